//go:build linux

package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/packet/dns"
)

// floodResult is what a spoofed-looking flood drew from a server.
type floodResult struct {
	sent, answered, slipped, bytesIn, bytesOut int
	answerSize                                 int       // of a full answer: the amplification without RRL
	start, last                                time.Time // first query sent, last reply received
}

func (f floodResult) amplification() float64 { return float64(f.bytesOut) / float64(f.bytesIn) }

// flood sends n queries for big.example.com TXT to addr from 32 sockets (8
// addresses of 127.0.0.0/24, 4 ports each) as fast as they go, and counts
// the replies until none came for 2 s after the last query (bounded: 60 s).
// Every 200 queries it calls probe (if not nil), in the middle of the flood.
func flood(t *testing.T, addr netip.AddrPort, n int, probe func()) floodResult {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion("big.example.com.", mdns.TypeTXT) // a large answer: what a reflection attack asks for
	q.SetEdns0(1232, false)
	raw, _ := q.Pack()
	var conns []*net.UDPConn
	for a := 1; a <= 8; a++ {
		for range 4 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(a))})
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadBuffer(4 << 20)
			defer c.Close()
			conns = append(conns, c)
		}
	}
	var mu sync.Mutex
	var res floodResult
	var wg sync.WaitGroup
	var sending atomic.Bool // a silence while queries still go (a slow probe) is no end
	sending.Store(true)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			for {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				k, err := c.Read(buf)
				if ne, ok := err.(net.Error); ok && ne.Timeout() && sending.Load() {
					continue
				}
				if err != nil {
					return
				}
				r := new(mdns.Msg)
				if r.Unpack(buf[:k]) != nil {
					t.Errorf("reply does not parse")
					return
				}
				mu.Lock()
				res.last = time.Now()
				res.bytesOut += k
				if r.Truncated {
					if len(r.Answer)+len(r.Ns) != 0 {
						t.Errorf("slipped reply with records: %v", r)
					}
					res.slipped++
				} else {
					res.answered++
					res.answerSize = k
				}
				mu.Unlock()
			}
		}()
	}
	dst := net.UDPAddrFromAddrPort(addr)
	res.start = time.Now()
	deadline := res.start.Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		if _, err := conns[i%len(conns)].WriteToUDP(raw, dst); err != nil {
			t.Fatal(err)
		}
		res.sent++
		res.bytesIn += len(raw)
		if probe != nil && i%200 == 100 {
			probe()
		}
	}
	sending.Store(false)
	wg.Wait()
	return res
}

// TestAttackDNSReflectionRRL floods shardd with --rrl-rate and Knot DNS with
// mod-rrl at the same rate and slip from one /24 (many ports, eight
// addresses): both limit it (the exact rate is TestRRLFloodLimitedToRate's,
// on an injected clock), shardd's slipped replies are TC and empty, another
// /24 keeps full service during the flood, an exempt /24 is never limited,
// and the amplification factors are logged side by side.
func TestAttackDNSReflectionRRL(t *testing.T) {
	const rate, slip, n = 50, 2, 4000
	knot := startKnot(t, fmt.Sprintf("mod-rrl:\n  - id: flood\n    rate-limit: %d\n    slip: %d\ntemplate:\n  - id: default\n    global-module: mod-rrl/flood\n", rate, slip))
	_, ours, url := dnsDaemon(t, append(exampleZones, "--rrl-rate", fmt.Sprint(rate), "--rrl-slip", fmt.Sprint(slip), "--rrl-exempt", "127.0.2.0/24")...)

	// Another /24 asks between the flood's queries and waits for each answer.
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, 1)}, net.UDPAddrFromAddrPort(ours))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	probes, full := 0, 0
	probe := func() {
		probes++
		q := new(mdns.Msg)
		q.SetQuestion("example.com.", mdns.TypeTXT)
		q.SetEdns0(1232, false)
		raw, _ := q.Pack()
		buf := make([]byte, 2048)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		r := new(mdns.Msg)
		if k, err := c.Read(buf); err == nil && r.Unpack(buf[:k]) == nil && !r.Truncated && len(r.Answer) == 1 {
			full++
		}
	}
	got := flood(t, ours, n, probe)
	if probes != n/200 || full != probes {
		t.Errorf("127.0.1.1 got %d full answers to %d queries during the flood, want all of %d", full, probes, n/200)
	}
	// At most a full bucket (rate x 1 s window) and the rate for as long
	// as replies came.
	limited := got.sent - got.answered
	most := int(rate*(1+got.last.Sub(got.start).Seconds())*1.1) + 1
	if got.answered > most || got.slipped == 0 || got.slipped > limited/slip+1 {
		t.Errorf("shardd under the flood of %v: %d answered, %d slipped; want at most %d answered and every %dnd limited reply slipped",
			got.last.Sub(got.start), got.answered, got.slipped, most, slip)
	}
	waitMetric(t, url, "shardd_dns_rrl_slipped_total", "", float64(got.slipped))
	for range 3 {
		if r := dig(t, "dig", ours, "-b", "127.0.2.9", "example.com", "TXT"); r.flags["tc"] || len(r.answer) != 1 {
			t.Errorf("exempt 127.0.2.9 limited: %s", r.out)
		}
	}
	k := flood(t, knot, n, nil)
	t.Logf("attack: %d queries of %d bytes (full answer %d bytes: %.1fx without RRL) from 127.0.0.1-8 (32 ports), rate %d slip %d: shardd answered %d, slipped %d in %v, amplification %.2f; Knot DNS mod-rrl answered %d, slipped %d in %v, amplification %.2f",
		n, got.bytesIn/max(got.sent, 1), got.answerSize, float64(got.answerSize)/float64(got.bytesIn/max(got.sent, 1)), rate, slip, got.answered, got.slipped, got.last.Sub(got.start).Round(time.Millisecond), got.amplification(),
		k.answered, k.slipped, k.last.Sub(k.start).Round(time.Millisecond), k.amplification())
	if got.amplification() >= 1 {
		t.Errorf("amplification %.2f under RRL, want below 1", got.amplification())
	}
}

// TestDigAndKdigCookies: dig +cookie and kdig +cookie get a server cookie;
// presenting it again is accepted (dig says "good") and exempts the client
// from the rate limit; a malformed cookie gets FORMERR.
func TestDigAndKdigCookies(t *testing.T) {
	_, addr, url := dnsDaemon(t, append(exampleZones, "--dns-cookies", "--rrl-rate", "1", "--rrl-slip", "1")...)
	r := dig(t, "dig", addr, "+cookie", "example.com", "A")
	cookie := ""
	for _, l := range strings.Split(r.out, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[1] == "COOKIE:" && f[3] == "(good)" {
			cookie = f[2]
		}
	}
	if r.status != "NOERROR" || len(cookie) != 48 {
		t.Fatalf("dig +cookie: no good server cookie:\n%s", r.out)
	}
	for range 5 { // over the rate of 1/s, but with a valid cookie
		r := dig(t, "dig", addr, "+cookie="+cookie, "example.com", "A")
		if r.status != "NOERROR" || r.flags["tc"] || len(r.answer) != 1 || !strings.Contains(r.out, "(good)") {
			t.Fatalf("dig +cookie=%s: not answered in full:\n%s", cookie, r.out)
		}
	}
	// kdig from another /24, whose bucket is full.
	k := dig(t, "kdig", addr, "-b", "127.0.3.1", "+cookie", "example.com", "A")
	i := strings.Index(k.out, ";; COOKIE: ")
	if k.status != "NOERROR" || i < 0 || len(strings.Fields(k.out[i:])[2]) != 48 {
		t.Fatalf("kdig +cookie: no server cookie:\n%s", k.out)
	}
	kc := strings.ToLower(strings.Fields(k.out[i:])[2])
	for range 3 { // over the rate, with the cookie kdig was given
		if k := dig(t, "kdig", addr, "-b", "127.0.3.1", "+cookie="+kc, "example.com", "A"); k.status != "NOERROR" || k.flags["tc"] || len(k.answer) != 1 {
			t.Fatalf("kdig +cookie=%s: not answered in full:\n%s", kc, k.out)
		}
	}
	if f := dig(t, "dig", addr, "+cookie=0102030405", "+nobadcookie", "example.com", "A"); f.status != "FORMERR" {
		t.Errorf("a 5-byte cookie: %s, want FORMERR", f.status)
	}
	waitMetric(t, url, "shardd_dns_responses_total", `rcode="FORMERR"`, 1)
}

// TestRRLSummaryLog: the minute's summary is one line with what was
// limited since the last, by class, and nothing when nothing was.
func TestRRLSummaryLog(t *testing.T) {
	srv, err := dns.NewServer([]string{"../../testdata/dns/example.com.zone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnableRRL(dns.RRLConfig{Rate: 1, Slip: 2, Window: time.Second, IPv4Prefix: 24, IPv6Prefix: 56}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	s := &dnsService{srv: srv, log: zap.New(core)}
	last := s.logRRL(srv.RRLStats())
	h := srv.NewHandler(0)
	q := new(mdns.Msg)
	q.SetQuestion("example.com.", mdns.TypeA)
	raw, _ := q.Pack()
	rq := packet.NewReplyQueue(64, 64*512, 512)
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort("127.0.0.1:5300"), Proto: packet.UDP}
	for range 11 { // one batch: 1 answered, 10 limited, 5 slipped
		if err := h.ServePacket(rq.Begin(p), p); err != nil {
			t.Fatal(err)
		}
	}
	h.Publish()
	last = s.logRRL(last)
	s.logRRL(last)
	if logs.Len() != 1 {
		t.Fatalf("%d log lines, want 1: %v", logs.Len(), logs.All())
	}
	f := logs.All()[0].ContextMap()
	if f["limited"] != uint64(10) || f["slipped"] != uint64(5) || f["positive"] != uint64(10) {
		t.Errorf("summary %v, want limited 10, slipped 5, positive 10", f)
	}
}
