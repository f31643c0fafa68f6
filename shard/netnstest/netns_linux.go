package netnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require returns the path of ip (iproute2), and skips the test unless it
// runs as root with ip installed, except under CI (SHARDD_REQUIRE_TOOLS=1),
// where a skip would hide a broken machine.
func Require(t testing.TB) string {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err == nil && os.Geteuid() == 0 {
		return ip
	}
	if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
		t.Fatalf("network namespaces need root and ip (iproute2), and SHARDD_REQUIRE_TOOLS=1: euid %d, %v", os.Geteuid(), err)
	}
	t.Skipf("network namespaces need root and ip (iproute2): euid %d, %v", os.Geteuid(), err)
	return ""
}

// NS is a named network namespace a test created.
type NS struct {
	Name string // under /var/run/netns
	ip   string
	n    int64 // N of the name
}

var seq atomic.Int64

// New creates the namespace shardd-ROLE-PID-N (unique in this run and
// among concurrent runs) with its loopback up, and deletes it by name when
// the test ends, whatever the outcome. Processes still running in it keep
// it alive until they exit: start them after New, with a cleanup that
// kills them, so that it runs first.
func New(t testing.TB, role string) *NS {
	t.Helper()
	n := &NS{n: seq.Add(1), ip: Require(t)}
	n.Name = fmt.Sprintf("shardd-%s-%d-%d", role, os.Getpid(), n.n)
	if out, err := exec.Command(n.ip, "netns", "add", n.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", n.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(n.ip, "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", n.Name, err, out)
		}
	})
	n.IP(t, "link", "set", "lo", "up")
	return n
}

// Try runs `ip -n NAME ARGS...` and returns its output.
func (n *NS) Try(args ...string) (string, error) {
	out, err := exec.Command(n.ip, append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// IP is Try failing the test on an error.
func (n *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Command is name run inside the namespace by `ip netns exec`, which execs
// it: the process's pid is the command's own, for signals.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command(n.ip, append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs f on an OS thread moved into the namespace and returns f's
// error. Sockets, links and maps f creates belong to the namespace (sockets
// may be used from any goroutine afterwards), and so do processes it
// starts; goroutines f starts run outside it. The thread stays locked and
// ends with its goroutine, so nothing else ever runs on it. f runs on that
// goroutine, not the test's: a t.FailNow in f ends only it, and Do then
// returns an error saying f did not return (which Run fails the test with).
func (n *NS) Do(f func() error) error {
	done := make(chan error, 1)
	go func() {
		err := errors.New("did not return (t.FailNow or runtime.Goexit in it)")
		defer func() { done <- err }()
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if e := n.enter(); e != nil {
			err = e
			return
		}
		err = f()
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("in network namespace %s: %w", n.Name, err)
	}
	return nil
}

// enter moves the calling thread into the namespace.
func (n *NS) enter() error {
	fd, err := unix.Open("/var/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWNET)
}

// Run is Do for an f without an error, failing the test if the thread
// cannot enter the namespace or f does not return.
func (n *NS) Run(t testing.TB, f func()) {
	t.Helper()
	if err := n.Do(func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// Ifindex is the interface index of dev inside the namespace.
func (n *NS) Ifindex(t testing.TB, dev string) int {
	t.Helper()
	var index int
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err == nil {
			index = ifi.Index
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return index
}

// Sysctl sets a net.* sysctl inside the namespace (key in dotted form; a
// device name with a dot cannot be given) and reads it back.
func (n *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := n.Do(func() error {
		if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(b)) != value {
			err = fmt.Errorf("reads back %q", strings.TrimSpace(string(b)))
		}
		return err
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s: %v", key, value, err)
	}
}

// ReadSysctl reads a net.* sysctl inside the namespace.
func (n *NS) ReadSysctl(key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// ListenUDP opens a UDP socket inside the namespace (laddr as
// net.ListenUDP takes it; nil for any address and a fresh port).
func (n *NS) ListenUDP(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() (err error) {
		c, err = net.ListenUDP(network, laddr)
		return err
	})
	return c, err
}

// DialContext connects from inside the namespace, as net.Dialer does.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient is an HTTP client whose connections start inside the
// namespace (127.0.0.1 is the namespace's own loopback), one connection a
// request, each request bounded by timeout.
func (n *NS) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
}

// Veth joins a (device devA) and b (device devB) with a veth pair created
// straight inside them (the names need only be free there), with queues
// receive and transmit queues per end (0: the kernel's default, one), and
// sets both ends up. Deleting either namespace deletes the pair.
func Veth(t testing.TB, a *NS, devA string, b *NS, devB string, queues int) {
	t.Helper()
	end := func(n *NS, dev string) []string {
		args := []string{"name", dev, "netns", n.Name}
		if queues > 0 {
			args = append(args, "numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues))
		}
		return args
	}
	args := append(append([]string{"link", "add"}, end(a, devA)...), "type", "veth", "peer")
	out, err := exec.Command(a.ip, append(args, end(b, devB)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("veth %s/%s - %s/%s: %v\n%s", a.Name, devA, b.Name, devB, err, out)
	}
	a.IP(t, "link", "set", devA, "up")
	b.IP(t, "link", "set", devB, "up")
}

// AddAddr puts prefix (address/bits) on dev; an IPv6 address skips
// duplicate address detection, so it is usable at once.
func (n *NS) AddAddr(t testing.TB, dev string, prefix netip.Prefix) {
	t.Helper()
	args := []string{"addr", "add", prefix.String(), "dev", dev}
	if prefix.Addr().Is6() {
		args = append(args, "nodad")
	}
	n.IP(t, args...)
}

// Family is ip's family flag for addr: "-4" or "-6".
func Family(addr netip.Addr) string {
	if addr.Is4() {
		return "-4"
	}
	return "-6"
}

// Nexthops lists the gateways of the namespace's route to prefix, one for
// a plain route and each nexthop's for a multipath one; none when there is
// no such route. It reads the kernel's table, not what a test asked for.
func (n *NS) Nexthops(prefix netip.Prefix) ([]netip.Addr, error) {
	out, err := n.Try(Family(prefix.Addr()), "route", "show", "exact", prefix.String())
	if err != nil {
		return nil, err
	}
	var gws []netip.Addr
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "via" {
			continue
		}
		a := f[i+1]
		if a == "inet6" || a == "inet" { // "via inet6 ADDR" in a mixed route
			if i+2 >= len(f) {
				break
			}
			a = f[i+2]
		}
		gw, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("route to %v: gateway %q: %v", prefix, a, err)
		}
		gws = append(gws, gw)
	}
	return gws, nil
}

// SetRoute makes the namespace's route to prefix go through the gateways
// (an ECMP route when there are several, each through the device given
// beside it), replacing the route there was; with none it removes the
// route.
func (n *NS) SetRoute(prefix netip.Prefix, gws []netip.Addr, devs []string) error {
	fam := Family(prefix.Addr())
	if len(gws) == 0 {
		if _, err := n.Try(fam, "route", "del", prefix.String()); err != nil && !strings.Contains(err.Error(), "No such process") {
			return err
		}
		return nil
	}
	args := []string{fam, "route", "replace", prefix.String()}
	for i, gw := range gws {
		if len(gws) > 1 {
			args = append(args, "nexthop")
		}
		args = append(args, "via", gw.String(), "dev", devs[i])
	}
	_, err := n.Try(args...)
	return err
}
