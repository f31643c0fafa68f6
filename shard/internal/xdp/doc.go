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
// ports, fragments) passes to the kernel untouched. The AF_XDP path
// answers in the frame's VLAN when the tag is in the frame; a frame whose
// tag the driver took out of it (rx VLAN offload on a NIC; over veth, a
// peer's VLAN device with tx VLAN offload) passes to the kernel where the
// program is device-bound and the driver reports the tag, and is answered
// untagged, on the wrong VLAN, where not (Program.DeviceBound, VLANOffload). What is
// redirected bypasses the kernel's network stack: netfilter rules and
// packet sockets (tcpdump) do not see it, in either direction.
//
// Off Linux every constructor returns an error wrapping
// errors.ErrUnsupported; the frame codec is portable.
package xdp
