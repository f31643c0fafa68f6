package shard

import (
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

// TestXDPVLANOutOfBandTag shows where a tag reaches the program and where
// it does not, for the README. A's UDP sockets send to B's listener
// through a stand-in for a VLAN device (VLAN 100, pushVLANOnEgress). With
// A's tx VLAN offload off, the kernel writes the tag into the frame
// (validate_xmit_vlan): the AF_XDP path answers in VLAN 100, as A's
// AF_PACKET socket sees. With it on (veth's default, and a NIC's rx VLAN
// offload does the same on receive), the tag travels beside the frame
// (skb->vlan_tci) and the program sees an untagged one: the reply leaves
// untagged, on the wrong VLAN, and A's untagged socket receives it. Both
// go through the AF_XDP socket. B's rx VLAN offload (veth's: it strips
// nothing) makes no difference.
func TestXDPVLANOutOfBandTag(t *testing.T) {
	// veth never strips a tag from the data, so B's rx VLAN offload
	// changes nothing: A's tx VLAN offload decides.
	for _, c := range []struct{ txvlanA, rxvlanB bool }{{false, true}, {true, true}, {true, false}} {
		txvlan := c.txvlanA
		t.Run(fmt.Sprintf("A-txvlan=%v,B-rxvlan=%v", c.txvlanA, c.rxvlanB), func(t *testing.T) {
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
			a, b := openRaw(t, p.A, p.DevA), openRaw(t, p.B, p.DevB)
			// Neighbour resolution in VLAN 100 would find no one: B has no
			// VLAN device.
			mac := net.HardwareAddr(b.mac[:]).String()
			p.A.IP(t, "neigh", "replace", p.B4.String(), "lladdr", mac, "dev", p.DevA)
			p.A.IP(t, "neigh", "replace", p.B6.String(), "lladdr", mac, "dev", p.DevA)
			pushVLANOnEgress(t, p.A, p.DevA, 100)
			for _, dst := range []netip.Addr{p.B4, p.B6} {
				c := dialUDPFrom(t, p.A, netip.AddrPortFrom(dst, groupPort(g)))
				msg := []byte("through VLAN 100 to " + dst.String())
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				local := c.LocalAddr().(*net.UDPAddr).AddrPort()
				f := a.next(t, "the reply to "+dst.String(), func(f *rawFrame) bool { return isUDPTo(f, dst.Is4(), local.Port()) })
				checkUDPReply(t, f.data, a, b, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), netip.AddrPortFrom(dst, groupPort(g)), msg)
				if wantTag := !txvlan; f.tagged != wantTag || (wantTag && f.tci != 100) {
					t.Fatalf("reply tagged %v (TCI %#04x); want tagged %v", f.tagged, f.tci, wantTag)
				}
				if txvlan {
					buf := make([]byte, 128)
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					if n, err := c.Read(buf); err != nil || string(buf[:n]) != string(msg) {
						t.Fatalf("the untagged reply did not reach A's untagged socket: %q, %v", buf[:max(n, 0)], err)
					}
				}
			}
			rx, tx := protoTotals(g.Stats(nil))
			if rx["xdp"] != 2 || tx["xdp"] != 2 || rx["udp"] != 0 {
				t.Fatalf("received %v, sent %v by proto; want both datagrams by AF_XDP", rx, tx)
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
