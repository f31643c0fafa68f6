package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPair: NewPair's two namespaces carry a datagram each way over IPv4
// and IPv6 between their addresses, each end has the queues asked for, and
// IfindexB is DevB's index as B's own ip(8) reports it.
func TestPair(t *testing.T) {
	p := NewPair(t, 2)
	echoAcross(t, p.A, p.B, netip.AddrPortFrom(p.B4, 5401))
	echoAcross(t, p.A, p.B, netip.AddrPortFrom(p.B6, 5401))
	for _, end := range []struct {
		ns  *NS
		dev string
	}{{p.A, p.DevA}, {p.B, p.DevB}} {
		out, err := end.ns.Command("ls", "/sys/class/net/"+end.dev+"/queues").CombinedOutput()
		if err != nil || strings.Count(string(out), "rx-") != 2 || strings.Count(string(out), "tx-") != 2 {
			t.Errorf("%s in %s: queues %q, %v; want rx-0 rx-1 tx-0 tx-1", end.dev, end.ns.Name, out, err)
		}
	}
	idx, err := p.B.Command("cat", "/sys/class/net/"+p.DevB+"/ifindex").CombinedOutput()
	if n, _ := strconv.Atoi(strings.TrimSpace(string(idx))); err != nil || n != p.IfindexB() || n == 0 {
		t.Errorf("IfindexB %d, /sys says %q (%v)", p.IfindexB(), idx, err)
	}
}

// TestDoFailNow: an f that ends its goroutine (as t.FailNow would) makes
// Do return an error instead of waiting for ever; an f that returns runs
// inside the namespace (its thread's namespace is the one named), and the
// caller's thread stays outside.
func TestDoFailNow(t *testing.T) {
	n := New(t, "nstest-do")
	if err := n.Do(func() error { runtime.Goexit(); return nil }); err == nil || !strings.Contains(err.Error(), "did not return") {
		t.Errorf("Do of an f that exits its goroutine: %v", err)
	}
	fi, err := os.Stat("/var/run/netns/" + n.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", fi.Sys().(*syscall.Stat_t).Ino)
	var inside string
	err = n.Do(func() (err error) { inside, err = os.Readlink("/proc/thread-self/ns/net"); return err })
	if err != nil || inside != want {
		t.Errorf("Do ran in %q (%v), want %s's %s", inside, err, n.Name, want)
	}
	if outside, _ := os.Readlink("/proc/thread-self/ns/net"); outside == want {
		t.Errorf("the test's own thread is in %s", n.Name)
	}
}
