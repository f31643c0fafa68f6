//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"

	"golang.org/x/sys/unix"
)

// The standing TCP attack suite against the daemon binary (issue 12,
// findings 2, 3, 6 and 7): every load loop is bounded in count and time and
// stays on loopback.

// plain is shardd built without the race detector, whose shadow memory
// would swamp the RSS figures these tests bound.
var plain = testkit.NewBinary("shardd-plain", ".")

// plainDaemon starts the plain shardd.
func plainDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonBin(t, plain.Path(t), nil, args...)
}

// tcpDaemon starts shardd on TCP (127.0.0.1) with a metrics endpoint and
// returns it, its address and the metrics URL.
func tcpDaemon(t *testing.T, plain bool, args ...string) (*daemon, netip.AddrPort, string) {
	t.Helper()
	all := append([]string{"--proto", "tcp", "--metrics", "127.0.0.1:0"}, args...)
	all = append(all, "127.0.0.1:0")
	var d *daemon
	if plain {
		d = plainDaemon(t, all...)
	} else {
		d = startDaemon(t, all...)
	}
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	return d, bound, url
}

// dnsQuery is the A query for example.com that testdata holds, framed for TCP.
func dnsQuery(t *testing.T) []byte {
	t.Helper()
	q, err := os.ReadFile("../../testdata/dns/query-a-example.com.bin")
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
}

// hugeTXTQuery is a TCP-framed query for huge.example.com TXT, whose answer
// (six 250-byte strings) is ~45 times its size.
func hugeTXTQuery() []byte {
	q := []byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range []string{"huge", "example", "com"} {
		q = append(append(q, byte(len(l))), l...)
	}
	q = append(q, 0, 0, 16, 0, 1)
	return append([]byte{0, byte(len(q))}, q...)
}

// TestAttackTCPPipelinedNoRead: clients that pipeline requests as fast as
// they can and never read a reply. Before the fix the daemon grew by ~14 MB
// per DNS connection (each read answered every frame it held, and the reply
// queue was checked only before a read); now a connection holds at most
// --max-conn-memory and a shard at most --max-shard-memory, so the RSS
// growth is bounded by shards x --max-shard-memory plus Go's heap overhead.
func TestAttackTCPPipelinedNoRead(t *testing.T) {
	const (
		conns      = 40
		shards     = 2
		budgetMiB  = 4
		perConnMiB = 1 // --max-conn-memory
	)
	for _, shape := range []string{"loop", "goroutines"} {
		for _, handler := range []string{"dns", "echo"} {
			t.Run(shape+"/"+handler, func(t *testing.T) {
				args := []string{"--tcp-shape", shape, "--shards", strconv.Itoa(shards), "--handler", handler,
					"--max-conn-memory", fmt.Sprintf("%dM", perConnMiB), "--max-shard-memory", fmt.Sprintf("%dM", budgetMiB),
					"--max-conns-per-ip", strconv.Itoa(conns), "--write-timeout", "60s"}
				var req []byte
				if handler == "dns" {
					args = append(args, "--zone", "../../testdata/dns/example.com.zone")
					q := hugeTXTQuery() // ~35 bytes that ask for ~1.6 KB
					for len(req) < 64<<10 {
						req = append(req, q...)
					}
				} else {
					req = make([]byte, 64<<10)
					for i := range req {
						req[i] = byte(i)
					}
				}
				d, addr, url := tcpDaemon(t, true, args...)
				pid := d.Cmd.Process.Pid
				// Warm up once (a read reply) so the baseline includes the
				// handler's first-use allocations.
				warm := testkit.DialTCP(t, addr.String())
				_, _ = warm.Write(req[:len(req)/16])
				_ = warm.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(warm, make([]byte, 16)); err != nil {
					t.Fatal(err)
				}
				warm.Close()
				base := int(testkit.RSS(t, pid) >> 10)

				stopSampling := testkit.PeakWatch(20*time.Millisecond, testkit.RSSOf(pid))
				var sent atomic.Int64
				var cs []net.Conn
				var wg sync.WaitGroup
				for i := 0; i < conns; i++ {
					c := testkit.DialTCP(t, addr.String())
					cs = append(cs, c)
					wg.Add(1)
					go func() {
						defer wg.Done()
						// Write until the daemon stops taking requests (the
						// write blocks for a second) or 64 MiB, whichever first.
						for n := 0; n < 64<<20; n += len(req) {
							_ = c.SetWriteDeadline(time.Now().Add(time.Second))
							w, err := c.Write(req)
							sent.Add(int64(w))
							if err != nil {
								return
							}
						}
					}()
				}
				wg.Wait() // every client is stuck: the daemon holds what it will hold
				var text string
				testkit.PollFor(t, "a request answered per client", 60*time.Second, func() bool {
					text = testkit.Scrape(t, url)
					return testkit.MetricSum(text, "shardd_rx_packets_total", "") >= conns
				})
				rx := testkit.MetricSum(text, "shardd_rx_packets_total", "")
				held := testkit.MetricSum(text, "shardd_tcp_held_bytes", "")
				during := int(stopSampling() >> 10)
				for _, c := range cs {
					c.Close()
				}
				testkit.PollFor(t, "every connection closed", 60*time.Second, func() bool {
					return testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_active", "") == 0
				})
				final := testkit.Scrape(t, url)
				heldAfter := testkit.MetricSum(final, "shardd_tcp_held_bytes", "")
				rxAll := testkit.MetricSum(final, "shardd_rx_packets_total", "")
				txAll := testkit.MetricSum(final, "shardd_tx_packets_total", "")
				unsent := testkit.MetricSum(final, "shardd_tcp_unsent_replies_total", "")
				// Freed heap goes back to the OS with Go's scavenger, a
				// little at a time: wait for it.
				after := int(testkit.RSS(t, pid) >> 10)
				// After the close the buffers are free (held 0) and the heap
				// given back (debug.FreeOSMemory after a shard's peak); what
				// remains is the runtime's own growth (stacks, spans, threads).
				boundAfter := base + shards*budgetMiB<<10 + 16<<10
				deadline := time.Now().Add(60 * time.Second)
				for after > boundAfter && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
					after = int(testkit.RSS(t, pid) >> 10)
				}
				t.Logf("attack: %s/%s: %d pipelining clients that never read wrote %d MiB into their sockets, %0.f requests answered; daemon RSS %d MiB before, peak %d MiB during (held %0.f KiB in buffers), %d MiB after they closed",
					shape, handler, conns, sent.Load()>>20, rx, base>>10, during>>10, held/1024, after>>10)
				if rx < conns {
					t.Fatalf("only %v requests were answered: the attack did not load the daemon", rx)
				}
				// The bound follows from the limits: each shard's connections
				// hold at most --max-shard-memory; Go's heap may take twice its
				// live size (GOGC=100) before it collects, plus each loop's
				// fixed buffers and slack for the runtime.
				bound := base + 2*shards*budgetMiB<<10 + 16<<10
				if during > bound {
					t.Fatalf("daemon RSS peaked at %d KiB with %d non-reading clients, over the bound %d KiB (baseline %d KiB + 2 x %d shards x --max-shard-memory %d MiB + 16 MiB)", during, conns, bound, base, shards, budgetMiB)
				}
				if held > shards*budgetMiB<<20 {
					t.Fatalf("shardd_tcp_held_bytes %v over %d shards x --max-shard-memory", held, shards)
				}
				// Every request answered was either written or counted unsent.
				if rxAll != txAll+unsent {
					t.Fatalf("%v requests answered, %v replies written + %v unsent: replies lost without a count", rxAll, txAll, unsent)
				}
				if heldAfter != 0 {
					t.Fatalf("shardd_tcp_held_bytes %v after every connection closed, want 0", heldAfter)
				}
				if after > boundAfter {
					t.Fatalf("daemon RSS %d KiB a minute after the clients closed, over %d KiB (baseline %d KiB + %d shards x --max-shard-memory + 16 MiB): memory was not given back", after, boundAfter, base, shards)
				}
				if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
					t.Fatalf("exit %d after the attack:\n%s", code, d.Stderr)
				}
			})
		}
	}
}

// dialFrom connects to addr from a given loopback source address.
func dialFrom(src netip.Addr, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 5 * time.Second}
	return d.Dial("tcp", addr.String())
}

// TestAttackTCPIdleSlotsDoNotLockOut: thousands of connections from many
// loopback sources that send nothing or only zero-length frames must not
// lock a real client (dig +tcp from 127.0.0.1) out. Before the fix every
// slot of --max-conns was held until the idle timeout and zero-length
// frames renewed it forever.
func TestAttackTCPIdleSlotsDoNotLockOut(t *testing.T) {
	dig := requireTool(t, "dig")
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			const (
				sources = 100
				perSrc  = 20
				maxPer  = 4
			)
			_, addr, url := tcpDaemon(t, false, "--tcp-shape", shape, "--shards", "2", "--handler", "dns",
				"--zone", "../../testdata/dns/example.com.zone", "--max-conns", "64", "--max-conns-per-ip", strconv.Itoa(maxPer),
				"--idle-timeout", "60s")
			var mu sync.Mutex
			var held []net.Conn
			defer func() {
				mu.Lock()
				for _, c := range held {
					c.Close()
				}
				mu.Unlock()
			}()
			var opened, refused atomic.Int64
			// One address tries to take everything: --max-conns-per-ip stops it.
			hog := netip.AddrFrom4([4]byte{127, 0, 0, 2})
			for i := 0; i < 50; i++ {
				c, err := dialFrom(hog, addr)
				if err != nil {
					refused.Add(1)
					continue
				}
				opened.Add(1)
				held = append(held, c)
			}
			testkit.PollFor(t, "the hog refused", 30*time.Second, func() bool {
				return testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_closed_total", `reason="per_ip_limit"`) >= 50-2*maxPer
			})
			// Then many addresses fill every slot.
			var wg sync.WaitGroup
			for s := 1; s < sources; s++ {
				src := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + s)})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perSrc; i++ {
						c, err := dialFrom(src, addr)
						if err != nil {
							refused.Add(1)
							continue
						}
						opened.Add(1)
						if i%2 == 0 {
							_, _ = c.Write([]byte{0, 0}) // a frame that carries no message
						}
						mu.Lock()
						held = append(held, c)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			// Keep sending zero-length frames on every connection still open.
			stopTicking := make(chan struct{})
			ticked := make(chan struct{})
			go func() {
				defer close(ticked)
				for round := 0; round < 600; round++ {
					mu.Lock()
					for _, c := range held {
						_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
						_, _ = c.Write([]byte{0, 0})
					}
					mu.Unlock()
					select {
					case <-stopTicking:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}()
			defer func() { close(stopTicking); <-ticked }()
			testkit.PollFor(t, "both shards full", 30*time.Second, func() bool {
				return testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_active", "") >= 2*64
			})
			// The held connections complete no message: once they have done
			// so for a second (the daemon's clock) they may be evicted to make
			// room for a client that does. dig tries until it gets in: the
			// tries before that second are refused (reason "limit").
			start := time.Now()
			var r digReply
			var took time.Duration
			for tries := 0; time.Since(start) < 60*time.Second; tries++ {
				t0 := time.Now()
				r = digTCP(t, dig, addr)
				took = time.Since(t0)
				if r.status == "NOERROR" && len(r.answer) > 0 {
					break
				}
			}
			text := testkit.Scrape(t, url)
			perIP := testkit.MetricSum(text, "shardd_tcp_closed_total", `reason="per_ip_limit"`)
			evicted := testkit.MetricSum(text, "shardd_tcp_closed_total", `reason="evicted"`)
			limit := testkit.MetricSum(text, "shardd_tcp_closed_total", `reason="limit"`)
			t.Logf("attack: %s: %d connections opened from %d sources (%d connects failed), idle or sending zero-length frames, against --max-conns 64 x 2 shards: dig +tcp got %q in %v; refused per_ip_limit %0.f, limit %0.f, evicted %0.f",
				shape, opened.Load(), sources, refused.Load(), r.status, took.Round(time.Millisecond), perIP, limit, evicted)
			if r.status != "NOERROR" || len(r.answer) == 0 || !r.tcp {
				t.Fatalf("dig +tcp was locked out by idle connections:\n%s", r.out)
			}
			if perIP == 0 {
				t.Fatalf("no connection refused by --max-conns-per-ip %d", maxPer)
			}
			if evicted == 0 {
				t.Fatalf("dig got in but no idle connection was evicted:\n%s", text)
			}
		})
	}
}

// digTCP runs dig +tcp once; a failed run is a reply with no status.
func digTCP(t *testing.T, dig string, addr netip.AddrPort) digReply {
	t.Helper()
	out, _ := exec.Command(dig, "@"+addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())), "+tcp", "+norecurse", "+time=5", "+tries=1", "example.com", "A").CombinedOutput()
	r := digReply{out: string(out), tcp: strings.Contains(string(out), "(TCP)")}
	if m := statusRE.FindStringSubmatch(r.out); m != nil {
		r.status = m[1]
	}
	in := false
	for _, line := range strings.Split(r.out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			in = true
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
			in = false
		case in:
			r.answer = append(r.answer, line)
		}
	}
	return r
}

// TestAttackTCPZeroLengthFramesDoNotKeepAlive: a client that sends only
// zero-length frames is closed by the idle timeout like a silent one.
func TestAttackTCPZeroLengthFramesDoNotKeepAlive(t *testing.T) {
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			_, addr, url := tcpDaemon(t, false, "--tcp-shape", shape, "--shards", "1", "--handler", "dns",
				"--zone", "../../testdata/dns/example.com.zone", "--idle-timeout", "1s")
			c := testkit.DialTCP(t, addr.String())
			start := time.Now()
			var closedAfter time.Duration
			for time.Since(start) < 20*time.Second {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{0, 0}); err != nil {
					closedAfter = time.Since(start)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			testkit.PollFor(t, "the idle close counted", 30*time.Second, func() bool {
				return testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_closed_total", `reason="idle"`) == 1
			})
			if closedAfter == 0 {
				closedAfter = time.Since(start)
			}
			t.Logf("attack: %s: a client sending a zero-length frame every 100 ms was closed as idle after %v (--idle-timeout 1s)", shape, closedAfter.Round(10*time.Millisecond))
			text := testkit.Scrape(t, url)
			if rx := testkit.MetricSum(text, "shardd_rx_packets_total", ""); rx != 0 {
				t.Fatalf("zero-length frames were counted as %v messages", rx)
			}
			if empty := testkit.MetricSum(text, "shardd_tcp_empty_frames_total", ""); empty < 1 {
				t.Fatalf("shardd_tcp_empty_frames_total = %v: the zero-length frames were not accounted", empty)
			}
		})
	}
}

// TestAttackTCPStopWithBusyClient: SIGTERM while a client pipelines DNS
// queries as fast as it can. The daemon answers what it had read, stops
// reading, closes cleanly and exits 0; the client gets a reply for every
// message the daemon counted as received.
func TestAttackTCPStopWithBusyClient(t *testing.T) {
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			d, addr, _ := tcpDaemon(t, false, "--tcp-shape", shape, "--shards", "2", "--handler", "dns",
				"--zone", "../../testdata/dns/example.com.zone", "--drain-timeout", "5s")
			q := dnsQuery(t)
			var batch []byte
			for i := 0; i < 64; i++ {
				batch = append(batch, q...)
			}
			const clients = 4
			var replies [clients]atomic.Int64
			var readErrs [clients]error
			var wg sync.WaitGroup
			started := make(chan struct{}, clients)
			for i := 0; i < clients; i++ {
				c := testkit.DialTCP(t, addr.String())
				wg.Add(2)
				go func() { // writer: as fast as it can, bounded
					defer wg.Done()
					deadline := time.Now().Add(30 * time.Second)
					for time.Now().Before(deadline) {
						_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
						if _, err := c.Write(batch); err != nil {
							return
						}
					}
				}()
				go func() { // reader: counts whole replies until EOF, then closes
					defer wg.Done()
					defer c.Close()
					r := bufio.NewReaderSize(c, 64<<10)
					var hdr [2]byte
					_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
					for {
						if _, err := io.ReadFull(r, hdr[:]); err != nil {
							if !errors.Is(err, io.EOF) {
								readErrs[i] = err
							}
							return
						}
						if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint16(hdr[:]))); err != nil {
							readErrs[i] = err
							return
						}
						if replies[i].Add(1) == 100 {
							started <- struct{}{}
						}
					}
				}()
			}
			for i := 0; i < clients; i++ {
				select {
				case <-started:
				case <-time.After(30 * time.Second):
					t.Fatal("the clients got no replies")
				}
			}
			code, took := d.Stop(t, syscall.SIGTERM)
			wg.Wait()
			var got int64
			for i := range replies {
				got += replies[i].Load()
				if readErrs[i] != nil {
					t.Errorf("client %d: %v after %d replies (the daemon reset it?)", i, readErrs[i], replies[i].Load())
				}
			}
			var rx, tx, unsent float64
			for _, line := range strings.Split(d.Stderr.String(), "\n") {
				if strings.Contains(line, `"shard summary"`) && strings.Contains(line, `"proto":"tcp"`) {
					rx += jsonNumber(t, line, "rx_messages")
					tx += jsonNumber(t, line, "tx_messages")
					unsent += jsonNumber(t, line, "unsent_messages")
				}
			}
			t.Logf("attack: %s: SIGTERM with %d clients pipelining DNS queries: exit %d after %v; daemon received %0.f, wrote %0.f, unsent %0.f; clients read %d replies",
				shape, clients, code, took.Round(time.Millisecond), rx, tx, unsent, got)
			if code != 0 {
				t.Fatalf("exit %d, want 0 (nothing accepted was lost):\n%s", code, d.Stderr)
			}
			if rx == 0 || rx != tx || unsent != 0 || float64(got) != tx {
				t.Fatalf("received %v messages, wrote %v replies, %v unsent, the clients read %d: every message received must be answered and read", rx, tx, unsent, got)
			}
		})
	}
}

// jsonNumber finds "key":N in a JSON log line.
func jsonNumber(t *testing.T, line, key string) float64 {
	t.Helper()
	_, rest, ok := strings.Cut(line, `"`+key+`":`)
	if !ok {
		t.Fatalf("no %s in %s", key, line)
	}
	end := strings.IndexAny(rest, ",}")
	v, err := strconv.ParseFloat(rest[:end], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAttackTCPAcceptAtDescriptorLimit: the daemon at its descriptor limit
// counts the failed accepts by errno, logs them once, backs off, and serves
// again once descriptors are free.
func TestAttackTCPAcceptAtDescriptorLimit(t *testing.T) {
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			d, addr, url := tcpDaemon(t, false, "--tcp-shape", shape, "--shards", "1")
			pid := d.Cmd.Process.Pid
			// A keep-alive connection to /metrics, opened before the limit:
			// scrapes on it need no new descriptor, so the test can watch
			// the failed accepts while the daemon is at its limit.
			keep := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer keep.CloseIdleConnections()
			failedAccepts := func() float64 {
				resp, err := keep.Get(url)
				if err != nil {
					t.Fatalf("scrape on the kept connection: %v", err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("scrape on the kept connection: %s %v: %s", resp.Status, err, b)
				}
				return testkit.MetricSum(string(b), "shardd_tcp_accept_errors_total", `errno="EMFILE"`)
			}
			if n := failedAccepts(); n != 0 {
				t.Fatalf("%v failed accepts before the attack", n)
			}
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				t.Fatal(err)
			}
			// Go raised the soft limit to the hard one at start: set both.
			lim := &unix.Rlimit{Cur: uint64(len(fds) + 4), Max: uint64(len(fds) + 4)}
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, lim, nil); err != nil {
				t.Skipf("prlimit on the daemon: %v", err)
			}
			var cs []net.Conn
			defer func() {
				for _, c := range cs {
					c.Close()
				}
			}()
			for i := 0; i < 32; i++ { // the listen backlog takes them; the daemon accepts 4
				c, err := net.Dial("tcp", addr.String())
				if err != nil {
					break
				}
				cs = append(cs, c)
			}
			// Wait until the daemon has failed to accept: its log line comes
			// first (once per kind), the counter with it.
			line := d.WaitLine(t, "accept failed; backing off and retrying (logged once per kind, counted in shardd_tcp_accept_errors_total)")
			if line["errno"] != "EMFILE" {
				t.Fatalf("accept failed with %v, want EMFILE", line["errno"])
			}
			// Let it retry a few times (the log must stay quiet).
			testkit.PollFor(t, "3 failed accepts", 60*time.Second, func() bool { return failedAccepts() >= 3 })
			for _, c := range cs {
				c.Close()
			}
			cs = nil
			// Once the clients are gone the daemon's descriptors come back:
			// a new client is served.
			var echoed bool
			deadline := time.Now().Add(30 * time.Second)
			for !echoed && time.Now().Before(deadline) {
				c, err := net.Dial("tcp", addr.String())
				if err == nil {
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					_, _ = c.Write([]byte("ping"))
					b := make([]byte, 4)
					_, err = io.ReadFull(c, b)
					echoed = err == nil && string(b) == "ping"
					c.Close()
				}
				if !echoed {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !echoed {
				t.Fatalf("no echo after the clients closed:\n%s", d.Stderr)
			}
			var emfile float64
			testkit.PollFor(t, "the metrics endpoint", 30*time.Second, func() bool {
				resp, err := (&net.Dialer{}).Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(url, "/metrics"), "http://"))
				if err != nil {
					return false
				}
				resp.Close()
				emfile = testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_accept_errors_total", `errno="EMFILE"`)
				return true
			})
			logged := strings.Count(d.Stderr.String(), "accept failed; backing off")
			t.Logf("attack: %s: at RLIMIT_NOFILE %d, %0.f accepts failed with EMFILE (logged %d time), a new client was served once descriptors were free", shape, lim.Cur, emfile, logged)
			if emfile == 0 {
				t.Fatal("shardd_tcp_accept_errors_total{errno=\"EMFILE\"} is 0")
			}
			if logged != 1 {
				t.Fatalf("the accept failure was logged %d times, want once:\n%s", logged, d.Stderr)
			}
		})
	}
}
