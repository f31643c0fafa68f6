package netnstest

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVethEchoSysctlAndRoutes: two namespaces joined by a veth pair carry
// a datagram each way over IPv4 and IPv6 between sockets opened inside
// them; a sysctl set in one is not set outside it; a command run in one
// sees its devices; routes set with SetRoute read back with Nexthops; and
// both namespaces are gone by name once the (sub)test that made them ends.
func TestVethEchoSysctlAndRoutes(t *testing.T) {
	var names []string
	t.Run("inside", func(t *testing.T) {
		a, b := New(t, "nstest-a"), New(t, "nstest-b")
		names = []string{a.Name, b.Name}
		Veth(t, a, "va0", b, "vb0", 0)
		for _, p := range []string{"10.53.250.1/29", "fd53:250::1/64"} {
			a.AddAddr(t, "va0", netip.MustParsePrefix(p))
		}
		for _, p := range []string{"10.53.250.2/29", "fd53:250::2/64"} {
			b.AddAddr(t, "vb0", netip.MustParsePrefix(p))
		}
		for _, to := range []netip.AddrPort{netip.MustParseAddrPort("10.53.250.2:5399"), netip.MustParseAddrPort("[fd53:250::2]:5399")} {
			echoAcross(t, a, b, to)
		}
		dialAcross(t, a, b)

		const key = "net.ipv4.fib_multipath_hash_policy"
		outside, err := os.ReadFile("/proc/sys/net/ipv4/fib_multipath_hash_policy")
		if err != nil {
			t.Fatal(err)
		}
		want := "1"
		if strings.TrimSpace(string(outside)) == "1" {
			want = "2"
		}
		a.Sysctl(t, key, want)
		if v, err := a.ReadSysctl(key); err != nil || v != want {
			t.Errorf("%s in %s = %q, %v; want %s", key, a.Name, v, err, want)
		}
		if now, _ := os.ReadFile("/proc/sys/net/ipv4/fib_multipath_hash_policy"); string(now) != string(outside) {
			t.Errorf("%s outside the namespace changed: %q, was %q", key, now, outside)
		}

		out, err := a.Command("cat", "/proc/net/dev").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "va0:") || strings.Contains(string(out), "vb0:") {
			t.Errorf("a command in %s sees the devices:\n%s (%v)", a.Name, out, err)
		}

		checkRoutes(t, a)
	})
	list, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(strings.Fields(string(list)), n) {
			t.Errorf("namespace %s outlived its test:\n%s", n, list)
		}
	}
	if len(names) != 2 {
		t.Fatalf("the subtest made no namespaces")
	}
}

// echoAcross sends a datagram from a to a socket of b's at to and the
// reply back, from sockets opened inside each namespace.
func echoAcross(t *testing.T, a, b *NS, to netip.AddrPort) {
	t.Helper()
	srv, err := b.ListenUDP("udp", net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := a.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 64)
	deadline := time.Now().Add(30 * time.Second)
	_ = srv.SetReadDeadline(deadline)
	_ = cl.SetReadDeadline(deadline)
	if _, err := cl.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
		t.Fatal(err)
	}
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("%v: got %q, %v", to, buf[:n], err)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	if n, from, err = cl.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "pong" || netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != to {
		t.Fatalf("reply from %v: %q from %v, %v", to, buf[:n], from, err)
	}
}

// dialAcross connects from a (DialContext) to a listener of b's and sees
// the connection arrive there from a's address.
func dialAcross(t *testing.T, a, b *NS) {
	t.Helper()
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", "10.53.250.2:5400"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialContext(t.Context(), "tcp", "10.53.250.2:5400")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if from := s.RemoteAddr().(*net.TCPAddr).IP.String(); from != "10.53.250.1" {
		t.Errorf("connection from %s, want a's 10.53.250.1", from)
	}
}

// checkRoutes sets a route to two gateways, one, and none, reading the
// kernel's table back each time.
func checkRoutes(t *testing.T, n *NS) {
	t.Helper()
	for _, c := range []struct {
		prefix string
		gws    []string
	}{
		{"10.53.251.0/24", []string{"10.53.250.2", "10.53.250.3"}},
		{"10.53.251.0/24", []string{"10.53.250.3"}},
		{"10.53.251.0/24", nil},
		{"fd53:251::/64", []string{"fd53:250::2", "fd53:250::3"}},
		{"fd53:251::/64", []string{"fd53:250::2"}},
		{"fd53:251::/64", nil},
	} {
		prefix := netip.MustParsePrefix(c.prefix)
		var gws []netip.Addr
		var devs []string
		for _, g := range c.gws {
			gws = append(gws, netip.MustParseAddr(g))
			devs = append(devs, "va0")
		}
		if err := n.SetRoute(prefix, gws, devs); err != nil {
			t.Fatal(err)
		}
		got, err := n.Nexthops(prefix)
		if err != nil || !slices.Equal(got, gws) {
			t.Errorf("route to %v: nexthops %v, %v; want %v", prefix, got, err, gws)
		}
	}
}
