// Package netnstest gives tests two network namespaces of their own joined
// by a veth pair, so that traffic over a real Ethernet device (XDP, GRO)
// stays inside the test: namespace A (the client side) and B (the server
// side), addressed from the benchmarking ranges 198.18.0.0/24 (RFC 2544)
// and 2001:2::/64 (RFC 5180). The names are unique per test process and
// call, and the namespaces are deleted by name at the test's end, whatever
// its outcome (deleting a namespace deletes its end of the pair).
package netnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Pair is the two namespaces and the veth pair between them.
type Pair struct {
	NSA, NSB   string
	DevA, DevB string
	A4, B4     netip.Addr // IPv4 addresses of DevA and DevB
	A6, B6     netip.Addr // IPv6 addresses of DevA and DevB
	ifindexB   int
	ipPath     string
}

var seq atomic.Uint32

// New creates the namespaces and a veth pair with queues receive and
// transmit queues per end, both up with their addresses (IPv6 without
// duplicate address detection, usable at once). It skips the test without
// root or ip(8), unless SHARDD_REQUIRE_TOOLS=1.
func New(t testing.TB, queues int) *Pair {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("network namespaces need root and ip (iproute2) with SHARDD_REQUIRE_TOOLS=1: euid %d, %v", os.Geteuid(), err)
		}
		t.Skipf("network namespaces and a veth pair need root and ip: euid %d, %v", os.Geteuid(), err)
	}
	id := fmt.Sprintf("%d%02d", os.Getpid()%100000, seq.Add(1)%100)
	p := &Pair{
		NSA: "shardd-xa-" + id, NSB: "shardd-xb-" + id, DevA: "sxa" + id, DevB: "sxb" + id,
		A4: netip.MustParseAddr("198.18.0.1"), B4: netip.MustParseAddr("198.18.0.2"),
		A6: netip.MustParseAddr("2001:2::1"), B6: netip.MustParseAddr("2001:2::2"),
		ipPath: ip,
	}
	for _, ns := range []string{p.NSA, p.NSB} {
		p.IP(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	}
	q := fmt.Sprint(queues)
	p.IP(t, "link", "add", p.DevA, "netns", p.NSA, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", p.DevB, "netns", p.NSB, "numtxqueues", q, "numrxqueues", q)
	p.IP(t, "-n", p.NSA, "addr", "add", p.A4.String()+"/24", "dev", p.DevA)
	p.IP(t, "-n", p.NSB, "addr", "add", p.B4.String()+"/24", "dev", p.DevB)
	p.IP(t, "-n", p.NSA, "addr", "add", p.A6.String()+"/64", "dev", p.DevA, "nodad")
	p.IP(t, "-n", p.NSB, "addr", "add", p.B6.String()+"/64", "dev", p.DevB, "nodad")
	for _, l := range [][2]string{{p.NSA, p.DevA}, {p.NSA, "lo"}, {p.NSB, p.DevB}, {p.NSB, "lo"}} {
		p.IP(t, "-n", l[0], "link", "set", l[1], "up")
	}
	p.In(t, p.NSB, func() {
		ifi, err := net.InterfaceByName(p.DevB)
		if err == nil {
			p.ifindexB = ifi.Index
		}
	})
	if p.ifindexB == 0 {
		t.Fatalf("no interface %s in %s", p.DevB, p.NSB)
	}
	return p
}

// IP runs ip(8) with args and fails the test if it fails.
func (p *Pair) IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(p.ipPath, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IfindexB is DevB's interface index in NSB.
func (p *Pair) IfindexB() int { return p.ifindexB }

// In runs f on a thread moved into the network namespace ns: sockets,
// maps and links f creates belong there. The thread stays locked and dies
// with its goroutine, so no other goroutine ever runs in ns.
func (p *Pair) In(t testing.TB, ns string, f func()) {
	t.Helper()
	Run(t, ns, f)
}

// Run runs f on a thread moved into the named network namespace ns (as
// `ip netns` names them), as Pair.In does.
func Run(t testing.TB, ns string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			_ = unix.Close(fd)
		}
		if err == nil {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("enter network namespace %s: %v", ns, err)
	}
}
