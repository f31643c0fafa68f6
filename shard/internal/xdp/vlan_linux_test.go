package xdp

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shardd/shardd/shard/netnstest"
)

// TestVLANOffload reads veth's rx and tx VLAN offload (both on when the
// pair is made), turns each off in turn and reads them back, as ethtool
// -k shows them where it is installed; an unknown interface is an error
// naming it.
func TestVLANOffload(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	check := func(wantRx, wantTx bool) {
		t.Helper()
		var rx, tx bool
		var err error
		p.B.Run(t, func() { rx, tx, err = VLANOffload(p.DevB) })
		if err != nil || rx != wantRx || tx != wantTx {
			t.Fatalf("VLANOffload(%s) = rx %v, tx %v, %v; want rx %v, tx %v", p.DevB, rx, tx, err, wantRx, wantTx)
		}
		if _, lerr := exec.LookPath("ethtool"); lerr != nil {
			return
		}
		out, err := p.B.Command("ethtool", "-k", p.DevB).CombinedOutput()
		if err != nil {
			t.Fatalf("ethtool -k: %v\n%s", err, out)
		}
		for name, want := range map[string]bool{"rx-vlan-offload": wantRx, "tx-vlan-offload": wantTx} {
			if !strings.Contains(string(out), name+": "+map[bool]string{true: "on", false: "off"}[want]) {
				t.Fatalf("ethtool -k shows, want %s %v:\n%s", name, want, out)
			}
		}
	}
	set := func(rx, tx bool) {
		t.Helper()
		var err error
		p.B.Run(t, func() { err = SetVLANOffload(p.DevB, rx, tx) })
		if err != nil {
			t.Fatal(err)
		}
	}
	check(true, true)
	set(false, true)
	check(false, true)
	set(true, false)
	check(true, false)
	var err error
	p.B.Run(t, func() { _, _, err = VLANOffload("nosuchdev0") })
	if err == nil || !strings.Contains(err.Error(), "nosuchdev0") {
		t.Fatalf("an unknown interface: %v, want an error naming it", err)
	}
}

// TestAttachIsDeviceBound: on veth (driver mode) the program attached is
// the device-bound variant that asks the driver for a VLAN tag, where
// the kernel has the kfunc, and so is the one a new process swaps into the
// inherited attachment; both run (an echo over each).
func TestAttachIsDeviceBound(t *testing.T) {
	if _, err := vlanTagKfunc(); err != nil {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("bpf_xdp_metadata_rx_vlan_tag (Linux 6.8, kernel BTF): %v", err)
		}
		t.Skipf("bpf_xdp_metadata_rx_vlan_tag (Linux 6.8, kernel BTF): %v", err)
	}
	p := netnstest.NewPair(t, 1)
	s := newServer(t, p, 9999)
	if !s.prog.DeviceBound() || s.prog.Mode() != "driver" {
		t.Fatalf("attached in %s mode, device-bound %v; want the device-bound program in driver mode", s.prog.Mode(), s.prog.DeviceBound())
	}
	c := dialFromA(t, p, netip.AddrPortFrom(p.B4, 9999))
	echoOver(t, s, c, "to the device-bound program")
	f, err := s.prog.LinkFile("xdp/" + p.DevB)
	if err != nil {
		t.Fatal(err)
	}
	var next *Program
	p.B.Run(t, func() {
		if next, err = NewProgram(1); err != nil {
			return
		}
		if err = next.AddListener(netip.AddrPortFrom(netip.IPv6Unspecified(), 9999), true); err == nil {
			err = next.SetSocket(0, s.sock)
		}
		if err == nil {
			err = next.Adopt(f)
		}
	})
	if next != nil {
		defer next.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if !next.DeviceBound() || next.Mode() != "inherited" {
		t.Fatalf("adopted: mode %s, device-bound %v; want the device-bound program swapped in", next.Mode(), next.DeviceBound())
	}
	if err := s.prog.Close(); err != nil {
		t.Fatal(err)
	}
	s.prog = nil
	echoOver(t, s, c, "to the adopted program")
}

// echoOver sends msg from c to s's socket and checks the echo.
func echoOver(t *testing.T, s *server, c *net.UDPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, got := s.echoOne(t); string(got) != msg {
		t.Fatalf("the socket got %q, want %q", got, msg)
	}
	buf := make([]byte, 128)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != msg {
		t.Fatalf("echo %q, %v; want %q", buf[:max(n, 0)], err, msg)
	}
}

// TestStripsVLANTags: veth reports rx VLAN offload on but never strips a
// tag, so no warning is due on it; an unknown interface strips nothing.
func TestStripsVLANTags(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	var strips, rx bool
	p.B.Run(t, func() {
		rx, _, _ = VLANOffload(p.DevB)
		strips = StripsVLANTags(p.DevB)
	})
	if !rx || strips {
		t.Fatalf("veth: rx VLAN offload %v, strips %v; want on and false", rx, strips)
	}
	if StripsVLANTags("shardd-no-such-if") {
		t.Fatal("an unknown interface strips tags")
	}
}
