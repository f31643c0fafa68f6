// Package xdp is shardd's AF_XDP fast path: one AF_XDP socket per shard and
// interface queue (UMEM, fill/completion and RX/TX rings, Linux only), the
// XDP program that redirects the listeners' UDP datagrams into those sockets
// (built in Go with github.com/cilium/ebpf, no C compiler), and the frame
// codec that turns an Ethernet frame into a datagram's addresses and
// payload, and a reply into a frame.
//
// Only UDP to a listener's port and address, over Ethernet with at most one
// 802.1Q tag, IPv4 without options or fragments or IPv6 with UDP as the
// first next header, is redirected; everything else (ARP, ICMP, TCP, other
// ports, fragments) passes to the kernel untouched. The tag must be in the
// frame: one the NIC stripped (rx VLAN offload) or that came beside the
// frame (a VLAN device over a lower device with tx VLAN offload, as over
// veth) is not seen, and the reply leaves untagged (VLANOffload). What is
// redirected bypasses the kernel's network stack: netfilter rules and
// packet sockets (tcpdump) do not see it, in either direction.
//
// Off Linux every constructor returns an error wrapping
// errors.ErrUnsupported; the frame codec is portable.
package xdp
