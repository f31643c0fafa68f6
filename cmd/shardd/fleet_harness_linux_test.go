package main

// The fleet harness: several shardd hosts behind one service address on one
// machine, in network namespaces the test creates (shard/netnstest).
//
//	client ──┐          ┌── h1: 10.53.0.53/32, fd53::53/128 on lo; shardd
//	         ├─ router ─┤
//	 (later  │  ECMP    └── h2: the same service address; shardd
//	primary)─┘  layer-4 hash
//
// Each namespace attached to the router gets link N: 10.53.N.0/24 and
// fd53:0:N::/64, the router .1/::1 on its device rN, the namespace .2/::2 on
// its eth0, default routes through the router. The router routes the
// service address to every host its health checker finds serving (an ECMP
// route when several), as a routing daemon announcing an anycast address
// from each host does. No packet leaves the namespaces.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/shard/netnstest"
)

var (
	fleetService4 = netip.AddrPortFrom(netip.MustParseAddr("10.53.0.53"), 53)
	fleetService6 = netip.AddrPortFrom(netip.MustParseAddr("fd53::53"), 53)
)

// fleetMetrics is where each host's shardd serves /metrics and /healthz,
// on the host namespace's own loopback.
const fleetMetrics = "127.0.0.1:9153"

// fleetLink is a namespace attached to the router.
type fleetLink struct {
	ns     *netnstest.NS
	dev    string     // the router's end of the link
	v4, v6 netip.Addr // the namespace's addresses: the router's next hops to it
}

// fleetHost is one server of the fleet.
type fleetHost struct {
	name string
	// owner is the test that made the fleet: the processes of a host live
	// until it ends, whichever subtest started them.
	owner *testing.T
	*fleetLink
	dir     string // its zone directory (dir/zones) and pidfile
	pidfile string
	proc    *daemon // the process the test started last (an upgrade replaces it with one it did not start)
	http    *http.Client
}

// fleetZones is where the hosts' zones come from: fileZones gives each host
// its own files and reloads them with HUP. A primary (shardd or Knot in a
// namespace of its own, attached with fleet.attach) gives each host
// secondary flags instead, and publishes by changing its own copy, which
// NOTIFY and IXFR take to the hosts.
type fleetZones interface {
	// hostArgs are the zone flags of h's shardd.
	hostArgs(t *testing.T, h *fleetHost) []string
	// publish makes text the fleet.test zone's new version; the caller
	// waits for its serial on every host.
	publish(t *testing.T, f *fleet, text string)
}

// fleet is the network and its hosts.
type fleet struct {
	t      *testing.T
	router *netnstest.NS
	client *fleetLink
	hosts  []*fleetHost
	check  *healthChecker
}

// newFleet builds the router (forwarding, ECMP hash policy hashPolicy for
// both families: 1 hashes ports too), the client and n host namespaces,
// with nothing running on the hosts yet.
func newFleet(t *testing.T, n, hashPolicy int) *fleet {
	t.Helper()
	netnstest.Require(t)
	f := &fleet{t: t, router: netnstest.New(t, "router")}
	policy := strconv.Itoa(hashPolicy)
	for key, v := range map[string]string{
		"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
		"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0",
		"net.ipv4.fib_multipath_hash_policy": policy, "net.ipv6.fib_multipath_hash_policy": policy,
	} {
		f.router.Sysctl(t, key, v)
	}
	f.client = f.attach(t, "client", 1)
	for i := range n {
		h := &fleetHost{name: fmt.Sprintf("h%d", i+1), owner: t, fleetLink: f.attach(t, fmt.Sprintf("h%d", i+1), 11+i), dir: t.TempDir()}
		h.pidfile = filepath.Join(h.dir, "shardd.pid")
		h.http = h.ns.HTTPClient(2 * time.Second)
		h.ns.AddAddr(t, "lo", netip.PrefixFrom(fleetService4.Addr(), 32))
		h.ns.AddAddr(t, "lo", netip.PrefixFrom(fleetService6.Addr(), 128))
		f.hosts = append(f.hosts, h)
	}
	return f
}

// attach makes a namespace for role joined to the router by link n.
func (f *fleet) attach(t *testing.T, role string, n int) *fleetLink {
	t.Helper()
	l := &fleetLink{ns: netnstest.New(t, "fleet-"+role), dev: fmt.Sprintf("r%d", n),
		v4: netip.MustParseAddr(fmt.Sprintf("10.53.%d.2", n)), v6: netip.MustParseAddr(fmt.Sprintf("fd53:0:%d::2", n))}
	netnstest.Veth(t, f.router, l.dev, l.ns, "eth0", 0)
	f.router.AddAddr(t, l.dev, netip.MustParsePrefix(fmt.Sprintf("10.53.%d.1/24", n)))
	f.router.AddAddr(t, l.dev, netip.MustParsePrefix(fmt.Sprintf("fd53:0:%d::1/64", n)))
	l.ns.AddAddr(t, "eth0", netip.PrefixFrom(l.v4, 24))
	l.ns.AddAddr(t, "eth0", netip.PrefixFrom(l.v6, 64))
	l.ns.IP(t, "-4", "route", "add", "default", "via", fmt.Sprintf("10.53.%d.1", n))
	l.ns.IP(t, "-6", "route", "add", "default", "via", fmt.Sprintf("fd53:0:%d::1", n))
	return l
}

// start starts shardd on every host with its zone flags from zones, starts
// the health checker, and waits until the router routes the service
// address to every host.
func (f *fleet) start(t *testing.T, zones fleetZones) {
	t.Helper()
	for _, h := range f.hosts {
		h.start(t, zones)
	}
	f.check = startHealthChecker(t, f)
	f.waitRoute(t, f.hosts...)
}

// start runs shardd in h's namespace (ip netns exec execs it: the pid is
// shardd's) serving DNS on the service addresses and on the host's own
// IPv4 address, UDP and TCP, and waits until it serves and its pidfile
// names it.
func (h *fleetHost) start(t *testing.T, zones fleetZones) {
	t.Helper()
	args := append([]string{"--log-format", "json", "--handler", "dns", "--proto", "udp,tcp", "--shards", "2",
		"--metrics", fleetMetrics, "--pidfile", h.pidfile}, zones.hostArgs(t, h)...)
	unicast := netip.AddrPortFrom(h.v4, 53) // the host's own address, for what must reach this host (NOTIFY)
	cmd := h.ns.Command(sharddBin(t), append(args, fleetService4.String(), fleetService6.String(), unicast.String())...)
	h.proc = testkit.Start(h.owner, h.name, cmd)
	for range 3 {
		h.proc.WaitLine(t, "listening")
	}
	h.proc.WaitLine(t, "serving metrics")
	h.proc.WaitPidfile(t, h.pidfile)
}

// pid is the process h's pidfile names (0 while none).
func (h *fleetHost) pid() int {
	b, _ := os.ReadFile(h.pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// signal sends sig to the process h's pidfile names.
func (h *fleetHost) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	pid := h.pid()
	if pid <= 1 {
		t.Fatalf("%s: pidfile %s names no process", h.name, h.pidfile)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("%s: %v to pid %d: %v", h.name, sig, pid, err)
	}
	return pid
}

// stop sends TERM to the pid in h's pidfile and waits until that process
// has gone and removed its pidfile.
func (h *fleetHost) stop(t *testing.T) {
	t.Helper()
	pid := h.signal(t, syscall.SIGTERM)
	if h.proc != nil && h.proc.Cmd.Process.Pid == pid {
		select {
		case <-h.proc.Exited:
			if h.proc.Code != 0 {
				t.Fatalf("%s exited %d after TERM:\n%s", h.name, h.proc.Code, h.proc.Stderr)
			}
		case <-time.After(testkit.WaitTimeout):
			t.Fatalf("%s did not exit after TERM", h.name)
		}
	}
	testkit.PollFor(t, h.name+"'s process to end and remove its pidfile", testkit.WaitTimeout, func() bool {
		_, err := os.Stat(h.pidfile)
		return os.IsNotExist(err) && !processRunning(pid)
	})
}

// processRunning: pid exists and is not a zombie (an upgraded process's
// parent is gone; whoever adopted it may reap it late).
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// upgrade replaces h's process with `shardd upgrade --pidfile` run in h's
// namespace, waits for the old process to hand over and go, and kills the
// new one at the test's end if it still runs then.
func (h *fleetHost) upgrade(t *testing.T) {
	t.Helper()
	old := h.pid()
	out, err := h.ns.Command(sharddBin(t), "upgrade", "--pidfile", h.pidfile).CombinedOutput()
	if pid := h.pid(); pid != old && pid > 1 {
		h.owner.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // the process this upgrade started
	}
	if err != nil || !strings.Contains(string(out), "new process") {
		t.Fatalf("%s: shardd upgrade: %v\n%s", h.name, err, out)
	}
	// The old process's exit status is out of reach here: the new one
	// holds the stderr pipe, so testkit's Wait returns only when both end.
	testkit.PollFor(t, h.name+"'s old process to finish and exit", testkit.WaitTimeout, func() bool { return !processRunning(old) })
	if h.proc != nil && !strings.Contains(h.proc.Stderr.String(), "upgrade handed over") {
		t.Fatalf("%s: the old process did not log its hand-over:\n%s", h.name, h.proc.Stderr)
	}
	t.Logf("%s: %s", h.name, strings.TrimSpace(string(out)))
}

// get fetches path from h's metrics endpoint, inside h's namespace.
func (h *fleetHost) get(path string) (string, error) {
	return testkit.GetVia(h.http, "http://"+fleetMetrics+path)
}

// metric sums the series of name on h whose labels contain match.
func (h *fleetHost) metric(t *testing.T, name, match string) float64 {
	t.Helper()
	text, err := h.get("/metrics")
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	return testkit.MetricSum(text, name, match)
}

// rx is how many datagrams (or TCP messages) h's process received on the
// service address to (shardd_rx_packets_total of that listener and proto).
func (h *fleetHost) rx(t *testing.T, to netip.AddrPort, proto string) float64 {
	t.Helper()
	return h.metric(t, "shardd_rx_packets_total", fmt.Sprintf("listener=%q,proto=%q", to.String(), proto))
}

// waitRoute waits until the router's routes to both service addresses go
// to exactly the hosts given (read from the kernel's table).
func (f *fleet) waitRoute(t *testing.T, hosts ...*fleetHost) {
	t.Helper()
	var want4, want6 []netip.Addr
	for _, h := range hosts {
		want4, want6 = append(want4, h.v4), append(want6, h.v6)
	}
	slices.SortFunc(want4, netip.Addr.Compare)
	slices.SortFunc(want6, netip.Addr.Compare)
	var got4, got6 []netip.Addr
	fleetWait(t, func() bool {
		var err4, err6 error
		got4, err4 = f.router.Nexthops(netip.PrefixFrom(fleetService4.Addr(), 32))
		got6, err6 = f.router.Nexthops(netip.PrefixFrom(fleetService6.Addr(), 128))
		slices.SortFunc(got4, netip.Addr.Compare)
		slices.SortFunc(got6, netip.Addr.Compare)
		return err4 == nil && err6 == nil && slices.Equal(got4, want4) && slices.Equal(got6, want6)
	}, func() string {
		return fmt.Sprintf("the router to route the service to %v %v; it routes to %v %v; health checker: %v", want4, want6, got4, got6, f.check.events())
	})
}

// fleetWait polls cond every 20 ms until it holds; after
// testkit.WaitTimeout it fails the test with what(), which describes the
// state last seen.
func fleetWait(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(testkit.WaitTimeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", testkit.WaitTimeout, what())
		}
	}
}

// healthChecker is what a routing daemon with a health check does on each
// host (BIRD or FRR announcing the service address while a check script
// passes): it asks each host's /healthz every 100 ms, withdraws a host's
// next hop from the router after 3 failures in a row and puts it back after
// one success.
type healthChecker struct {
	f     *fleet
	mu    sync.Mutex
	up    []bool   // announced
	fails []int    // failures in a row
	log   []string // "h2 withdrawn", "h2 announced", in order
	quit  chan struct{}
	done  chan struct{}
}

const healthFall = 3

func startHealthChecker(t *testing.T, f *fleet) *healthChecker {
	c := &healthChecker{f: f, up: make([]bool, len(f.hosts)), fails: make([]int, len(f.hosts)),
		quit: make(chan struct{}), done: make(chan struct{})}
	go c.run(t)
	t.Cleanup(func() { close(c.quit); <-c.done })
	return c
}

func (c *healthChecker) run(t *testing.T) {
	defer close(c.done)
	for {
		changed := false
		for i, h := range c.f.hosts {
			body, err := h.get("/healthz")
			if err == nil && body != "ok\n" {
				err = fmt.Errorf("/healthz: %q", body)
			}
			changed = c.note(i, err) || changed
		}
		if changed {
			if err := c.program(); err != nil {
				t.Errorf("health checker: %v", err)
			}
		}
		select {
		case <-c.quit:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// note records one probe of host i (err: why it failed) and says whether
// its announcement changes.
func (c *healthChecker) note(i int, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := c.f.hosts[i].name
	switch {
	case err == nil:
		c.fails[i] = 0
		if !c.up[i] {
			c.up[i] = true
			c.log = append(c.log, name+" announced")
			return true
		}
	case c.up[i]:
		c.fails[i]++
		if c.fails[i] >= healthFall {
			c.up[i] = false
			c.log = append(c.log, name+" withdrawn", fmt.Sprintf("(%s: %v)", name, err))
			return true
		}
	}
	return false
}

// program sets the router's routes to the service addresses through every
// announced host.
func (c *healthChecker) program() error {
	c.mu.Lock()
	var gw4, gw6 []netip.Addr
	var devs []string
	for i, h := range c.f.hosts {
		if c.up[i] {
			gw4, gw6, devs = append(gw4, h.v4), append(gw6, h.v6), append(devs, h.dev)
		}
	}
	c.mu.Unlock()
	if err := c.f.router.SetRoute(netip.PrefixFrom(fleetService4.Addr(), 32), gw4, devs); err != nil {
		return err
	}
	return c.f.router.SetRoute(netip.PrefixFrom(fleetService6.Addr(), 128), gw6, devs)
}

// events is the checker's log so far.
func (c *healthChecker) events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// fileZones: each host serves the example zone and fleet.test from files in
// its own zone directory; publish rewrites fleet.test on every host and
// sends each a HUP.
type fileZones struct{}

func newFileZones(t *testing.T, f *fleet, text string) fileZones {
	t.Helper()
	for _, h := range f.hosts {
		h.exampleZone(t)
		writeFile(t, filepath.Join(h.dir, "zones", "fleet.test.zone"), text)
	}
	return fileZones{}
}

// exampleZone writes the example zone into h's zone directory (made here)
// and returns its path: every zone source serves it from a file.
func (h *fleetHost) exampleZone(t *testing.T) string {
	t.Helper()
	example, err := os.ReadFile("../../testdata/dns/example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.dir, "zones"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.dir, "zones", "example.com.zone")
	writeFile(t, path, string(example))
	return path
}

func (fileZones) hostArgs(_ *testing.T, h *fleetHost) []string {
	return []string{"--zone", filepath.Join(h.dir, "zones")}
}

func (fileZones) publish(t *testing.T, f *fleet, text string) {
	t.Helper()
	for _, h := range f.hosts {
		writeFile(t, filepath.Join(h.dir, "zones", "fleet.test.zone"), text)
		h.signal(t, syscall.SIGHUP)
	}
}

// writeFile replaces path's contents atomically (a rename), so a reload
// never reads half a file.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fleetZone is the fleet.test zone at serial, whose name w has address a.
func fleetZone(serial int, a string) string {
	return fmt.Sprintf("$ORIGIN fleet.test.\n$TTL 60\n@ SOA ns hostmaster %d 60 10 600 30\n@ NS ns\nns A 10.53.0.53\nw A %s\n", serial, a)
}

// clientSockets opens n UDP sockets in the client namespace, each on its
// own source port (they stay open together), closed at the test's end.
func (f *fleet) clientSockets(t *testing.T, network string, n int) []*net.UDPConn {
	t.Helper()
	var cs []*net.UDPConn
	err := f.client.ns.Do(func() error {
		for range n {
			c, err := net.ListenUDP(network, nil)
			if err != nil {
				return err
			}
			cs = append(cs, c)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// fleetQuery asks to for name's A (or AAAA) records from c and returns the
// reply; one try, up to timeout.
func fleetQuery(c *net.UDPConn, to netip.AddrPort, name string, qtype uint16, id uint16, timeout time.Duration) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = id
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := c.WriteToUDPAddrPort(wire, to); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != to || r.Unpack(buf[:n]) != nil || r.Id != id {
			continue // a late reply to an earlier query, or not from the service
		}
		return r, nil
	}
}

// answerText is the reply's rcode and the data of its answer records.
func answerText(r *dns.Msg) string {
	s := []string{dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			s = append(s, rr.A.String())
		case *dns.AAAA:
			s = append(s, rr.AAAA.String())
		}
	}
	return strings.Join(s, " ")
}

// queryFromPorts sends one query for name from each of n source ports of
// the client to the service address to, and returns how many replies had
// each answer text. Every query must get its reply (one try each).
func (f *fleet) queryFromPorts(t *testing.T, to netip.AddrPort, n int, name string, qtype uint16) map[string]int {
	t.Helper()
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	got := map[string]int{}
	for i, c := range f.clientSockets(t, network, n) {
		r, err := fleetQuery(c, to, name, qtype, uint16(i), 30*time.Second)
		if err != nil {
			t.Fatalf("query %d from %v to %v: %v", i, c.LocalAddr(), to, err)
		}
		got[answerText(r)]++
	}
	return got
}

// fleetLoad is a steady query load from flows source ports of the client,
// each asking once and waiting for the reply before the next.
type fleetLoad struct {
	sent, answered atomic.Int64
	mu             sync.Mutex
	lost           []string
	quit           chan struct{}
	wg             sync.WaitGroup
}

// startLoad starts the load against to; stop ends it.
func (f *fleet) startLoad(t *testing.T, to netip.AddrPort, flows int, name, want string) *fleetLoad {
	t.Helper()
	l := &fleetLoad{quit: make(chan struct{})}
	for _, c := range f.clientSockets(t, "udp4", flows) {
		l.wg.Add(1)
		go l.flow(c, to, name, want)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *fleetLoad) flow(c *net.UDPConn, to netip.AddrPort, name, want string) {
	defer l.wg.Done()
	for id := uint16(0); ; id++ {
		select {
		case <-l.quit:
			return
		default:
		}
		l.sent.Add(1)
		r, err := fleetQuery(c, to, name, dns.TypeA, id, 10*time.Second)
		if err == nil && answerText(r) == want {
			l.answered.Add(1)
			continue
		}
		l.mu.Lock()
		if err != nil {
			l.lost = append(l.lost, fmt.Sprintf("from %v id %d: %v", c.LocalAddr(), id, err))
		} else {
			l.lost = append(l.lost, fmt.Sprintf("from %v id %d: %s", c.LocalAddr(), id, answerText(r)))
		}
		l.mu.Unlock()
	}
}

// stop ends the load; each flow finishes its query in flight.
func (l *fleetLoad) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

// failures lists the queries that got no reply, or a wrong one.
func (l *fleetLoad) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lost)
}

// tcpQuery asks to over a new TCP connection from the client namespace.
func (f *fleet) tcpQuery(t *testing.T, to netip.AddrPort, name string, qtype uint16) *dns.Msg {
	t.Helper()
	nc, err := f.client.ns.DialContext(t.Context(), "tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	conn := &dns.Conn{Conn: nc}
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r, err := conn.ReadMsg()
	if err != nil {
		t.Fatalf("TCP query to %v: %v", to, err)
	}
	return r
}
