package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/shardd/shardd/shard/internal/xdp"
	"github.com/shardd/shardd/shard/netnstest"
)

// pushVLANOnEgress attaches to dev in n a tcx egress program that gives
// every frame the out-of-band 802.1Q tag tci (bpf_skb_vlan_push sets
// skb->vlan_tci, as a VLAN device does above a lower device with tx VLAN
// offload): it stands in for a VLAN device, which this kernel may lack
// (8021q). Skipped where tcx (Linux 6.6) is missing, unless
// SHARDD_REQUIRE_TOOLS=1.
func pushVLANOnEgress(t *testing.T, n *netnstest.NS, dev string, tci int32) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R2, 0x0081), // ETH_P_8021Q in network order, as the helper takes it
		asm.Mov.Imm(asm.R3, tci),
		asm.FnSkbVlanPush.Call(),
		asm.Mov.Imm(asm.R0, -1), // TCX_NEXT
		asm.Return(),
	}})
	if err != nil {
		t.Fatalf("load the VLAN push program: %v", err)
	}
	t.Cleanup(func() { _ = prog.Close() })
	ifindex := n.Ifindex(t, dev)
	var l link.Link
	n.Run(t, func() {
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXEgress})
	})
	if errors.Is(err, ebpf.ErrNotSupported) && os.Getenv("SHARDD_REQUIRE_TOOLS") != "1" {
		t.Skipf("tcx egress programs: %v", err)
	}
	if err != nil {
		t.Fatalf("attach the VLAN push program: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
}

// TestXDPVLANOutOfBandTag: A's UDP sockets send to B's listener through a
// stand-in for a VLAN device (pushVLANOnEgress). With A's tx VLAN offload
// off, the kernel writes the tag into the frame (validate_xmit_vlan) and
// the AF_XDP path answers in the same VLAN. With it on (veth's default;
// a NIC's rx VLAN offload does the same on receive), the tag travels
// beside the frame (skb->vlan_tci) and the program sees an untagged frame;
// the device-bound program asks the driver for the tag and passes the
// frame to the kernel instead of answering it untagged, on the wrong VLAN:
// B's AF_PACKET tap sees the VLAN 100 frames (B has no VLAN 100 device, so
// its kernel drops them) and B's kernel delivers priority-tagged ones
// (VLAN 0) to the group's UDP socket, which answers. B's rx VLAN offload
// (veth strips nothing) makes no difference.
func TestXDPVLANOutOfBandTag(t *testing.T) {
	for _, c := range []struct {
		txvlanA, rxvlanB bool
		tci              uint16
	}{{false, true, 100}, {true, true, 100}, {true, false, 100}, {true, true, 5 << 13}} {
		t.Run(fmt.Sprintf("A-txvlan=%v,B-rxvlan=%v,tci=%#04x", c.txvlanA, c.rxvlanB, c.tci), func(t *testing.T) {
			p := netnstest.NewPair(t, 1)
			var err error
			p.A.Run(t, func() { err = xdp.SetVLANOffload(p.DevA, true, c.txvlanA) })
			if err == nil {
				p.B.Run(t, func() { err = xdp.SetVLANOffload(p.DevB, c.rxvlanB, true) })
			}
			if err != nil {
				t.Fatal(err)
			}
			g := listenXDP(t, p, Config{Addr: ":0", Shards: 1})
			go func() { _ = g.Serve(context.Background()) }()
			if c.txvlanA && !g.xdp[0].prog.DeviceBound() {
				if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
					t.Fatal("the program is not device-bound: no kernel BTF, or no bpf_xdp_metadata_rx_vlan_tag (Linux 6.8)")
				}
				t.Skip("the program is not device-bound: no kernel BTF, or no bpf_xdp_metadata_rx_vlan_tag (Linux 6.8)")
			}
			a, b := openRaw(t, p.A, p.DevA), openRaw(t, p.B, p.DevB)
			// Neighbour resolution through the stand-in would find no one.
			mac := net.HardwareAddr(b.mac[:]).String()
			p.A.IP(t, "neigh", "replace", p.B4.String(), "lladdr", mac, "dev", p.DevA)
			p.A.IP(t, "neigh", "replace", p.B6.String(), "lladdr", mac, "dev", p.DevA)
			pushVLANOnEgress(t, p.A, p.DevA, int32(c.tci))
			for _, dst := range []netip.Addr{p.B4, p.B6} {
				to := netip.AddrPortFrom(dst, groupPort(g))
				conn := dialUDPFrom(t, p.A, to)
				msg := []byte("through the VLAN stand-in to " + dst.String())
				if _, err := conn.Write(msg); err != nil {
					t.Fatal(err)
				}
				local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
				local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
				switch {
				case !c.txvlanA:
					f := a.next(t, "the reply to "+dst.String(), func(f *rawFrame) bool { return isUDPTo(f, dst.Is4(), local.Port()) })
					if !f.tagged || f.tci != c.tci {
						t.Fatalf("reply tagged %v, TCI %#04x; want %#04x", f.tagged, f.tci, c.tci)
					}
					checkUDPReply(t, f.data, a, b, local, to, msg)
				case c.tci&0xfff != 0:
					f := b.next(t, "the frame to "+dst.String()+" in B's kernel", func(f *rawFrame) bool { return isUDPTo(f, dst.Is4(), to.Port()) })
					if !f.tagged || f.tci != c.tci || !bytes.HasSuffix(f.data, msg) {
						t.Fatalf("B's kernel saw %q tagged %v, TCI %#04x; want %q with the tag %#04x beside it", f.data, f.tagged, f.tci, msg, c.tci)
					}
				default:
					buf := make([]byte, 128)
					_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
					if n, err := conn.Read(buf); err != nil || string(buf[:n]) != string(msg) {
						t.Fatalf("no reply by the UDP socket to the priority-tagged datagram: %q, %v", buf[:max(n, 0)], err)
					}
				}
			}
			// By AF_XDP with the tag in the frame; otherwise by the UDP
			// socket where B's kernel delivers them (VLAN 0), or not at all.
			var wantXDP, wantUDP uint64
			switch {
			case !c.txvlanA:
				wantXDP = 2
			case c.tci&0xfff == 0:
				wantUDP = 2
			}
			if rx, _ := protoTotals(g.Stats(nil)); rx["xdp"] != wantXDP || rx["udp"] != wantUDP {
				t.Fatalf("received %v by proto; want %d by xdp, %d by udp", rx, wantXDP, wantUDP)
			}
		})
	}
}

// dialUDPFrom connects a UDP socket in n to dst, closed at the test's end.
func dialUDPFrom(t *testing.T, n *netnstest.NS, dst netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	var err error
	n.Run(t, func() { c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
