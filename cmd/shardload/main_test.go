package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard"
)

// server is a real shardd group with its /metrics, run in-process.
type server struct {
	g          *shard.Group
	addr       string
	metricsURL string
}

func startServer(t *testing.T, h packet.Handler) *server {
	t.Helper()
	return startServerConfig(t, shard.Config{Addr: "127.0.0.1:0", Shards: 2, NewHandler: func(int) packet.Handler { return h }})
}

func startServerConfig(t *testing.T, cfg shard.Config) *server {
	t.Helper()
	g, err := shard.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(context.Background()) }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(g, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: metrics.Handler(reg)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = g.Shutdown(ctx)
		<-done
	})
	return &server{g: g, addr: g.Addr().String(), metricsURL: "http://" + ln.Addr().String() + "/metrics"}
}

// waitTimeout bounds every wait for a state: only a hang reaches it. Runs
// pass it as --wait, which shardload ends early once every reply arrived
// and the server counted every datagram: a loaded machine must not turn a
// late reply or a late count into a loss.
const waitTimeout = 60 * time.Second

func runLoad(t *testing.T, args ...string) (*summary, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := mainCode(append([]string{"--json", "--progress=false"}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("shardload %v: exit %d: %s", args, code, stderr.String())
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	return &s, stderr.String()
}

// TestOnewayAccountingMatchesServer runs one second of load and checks the
// books: sent == received + lost, and the per-shard split equals what the
// server's own counters say. The pacer never sends more than the rate
// allows; how much less it sends depends on the CPU it gets, which a unit
// test does not assert.
func TestOnewayAccountingMatchesServer(t *testing.T) {
	for _, gso := range []string{"on", "off"} {
		t.Run("gso="+gso, func(t *testing.T) {
			srv := startServer(t, packet.Discard{})
			s, _ := runLoad(t, "--duration", "1s", "--rate", "20000", "--gso", gso, "--senders", "1", "--wait", waitTimeout.String(), "--metrics", srv.metricsURL, srv.addr)
			if s.Received == nil || s.Server == nil {
				t.Fatalf("no server accounting: %+v", s)
			}
			if s.Sent == 0 || s.Sent > 25000 {
				t.Fatalf("sent %d in 1s at --rate 20000", s.Sent)
			}
			t.Logf("sent %d in 1s at --rate 20000", s.Sent)
			stats := srv.g.Stats(nil)
			if len(s.Server.Shards) != len(stats) {
				t.Fatalf("shardload saw %d shards, server has %d", len(s.Server.Shards), len(stats))
			}
			var total uint64
			for i, st := range stats {
				got := s.Server.Shards[i]
				if got.Shard != fmt.Sprint(st.Shard) || got.Received != st.RxPackets || got.KernelDrops != st.KernelDrops {
					t.Errorf("shard %d: shardload says %+v, server says rx %d drops %d", st.Shard, got, st.RxPackets, st.KernelDrops)
				}
				total += st.RxPackets
			}
			if total != *s.Received || *s.Lost != s.Server.KernelDrops {
				t.Errorf("server total %d, shardload received %d, lost %d vs kernel drops %d", total, *s.Received, *s.Lost, s.Server.KernelDrops)
			}
			// The independent check: what shardload counted as sent is what
			// reached the server's sockets, read or dropped.
			var drops uint64
			for _, st := range stats {
				drops += st.KernelDrops
			}
			if total+drops != s.Sent {
				t.Errorf("sent %d, server received %d + dropped %d", s.Sent, total, drops)
			}
		})
	}
}

func TestEchoMatchesRepliesAndMeasuresRTT(t *testing.T) {
	for _, payload := range []string{"", "../../testdata/dns/query-a-example.com.bin", "../../testdata/syslog/rfc5424.txt"} {
		t.Run("payload="+payload, func(t *testing.T) {
			srv := startServer(t, packet.Echo{})
			args := []string{"--mode", "echo", "--duration", "1s", "--rate", "10000", "--flows", "16", "--wait", waitTimeout.String(), "--metrics", srv.metricsURL}
			if payload != "" {
				args = append(args, "--payload", payload)
			}
			s, _ := runLoad(t, append(args, srv.addr)...)
			if s.Received == nil {
				t.Fatalf("no replies counted: %+v", s)
			}
			var tx uint64
			for _, st := range srv.g.Stats(nil) {
				tx += st.TxPackets
			}
			if *s.Received != tx {
				t.Fatalf("shardload matched %d replies, the server sent %d", *s.Received, tx)
			}
			if *s.Lost != 0 || s.Unexpected != 0 {
				t.Fatalf("lost %d, unexpected %d at a low rate on loopback", *s.Lost, s.Unexpected)
			}
			// Plausible: ordered, and in the right unit (a loaded machine
			// may hold a reply for a while; not for a minute).
			if s.RTT == nil || s.RTT.P50 <= 0 || s.RTT.P50 > s.RTT.P99 || s.RTT.P99 > s.RTT.Max || s.RTT.Max > int64(time.Minute) {
				t.Fatalf("implausible RTT: %+v", s.RTT)
			}
			if s.Server.Received != s.Sent {
				t.Fatalf("server received %d of %d", s.Server.Received, s.Sent)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "want exactly one target ADDR"},
		{[]string{"--rate", "-1", "127.0.0.1:9"}, "--rate -1: must be 0"},
		{[]string{"--size", "65508", "127.0.0.1:9"}, "--size 65508: must be between 1 and 65507"},
		{[]string{"--mode", "flood", "127.0.0.1:9"}, "--mode flood: want oneway or echo"},
		{[]string{"--mode", "echo", "--size", "8", "127.0.0.1:9"}, "echo mode needs at least 16 bytes"},
		{[]string{"localhost:9"}, `target "localhost:9": want IP:PORT`},
		{[]string{"127.0.0.1:0"}, "with a port from 1 to 65535"},
		{[]string{"--payload", "/nonexistent", "127.0.0.1:9"}, "--payload: open /nonexistent"},
		{[]string{"--bogus", "127.0.0.1:9"}, "unknown flag --bogus (see shardload --help for the flags)"},
		{[]string{"--size", "1x", "127.0.0.1:9"}, `--size "1x": want a byte count`},
		{[]string{"--duration", "5", "127.0.0.1:9"}, `--duration "5": missing unit, e.g. 5s`},
		{[]string{"--proto", "sctp", "127.0.0.1:9"}, "--proto sctp: want udp or tcp"},
		{[]string{"--duration", "1s", "[ff02::1]:9"}, "a multicast address"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := mainCode(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q, want one line with %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestRefusedTargetIsReported(t *testing.T) {
	// A port nobody listens on: the kernel answers with port unreachable.
	// It is taken below the ephemeral range, where no other test's bind to
	// port 0 can take it between this check and the run.
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreeUDPPort(t))
	var stdout, stderr bytes.Buffer
	code := mainCode([]string{"--progress=false", "--duration", "300ms", "--rate", "1000", "--mode", "echo", "--wait", "100ms", addr}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "refused") {
		t.Fatalf("exit %d, stderr %q: want 1 and a refused error", code, stderr.String())
	}
}

func TestPayloadStampAndMatch(t *testing.T) {
	d := make([]byte, 64)
	stamp(filler, d, 42, 1234*time.Microsecond)
	seq, at, ok := replySeq(filler, d)
	if !ok || seq != 42 || at != 1234*time.Microsecond {
		t.Fatalf("filler round trip: %d %v %v", seq, at, ok)
	}
	if _, _, ok := replySeq(filler, d[:15]); ok {
		t.Fatal("a 15-byte reply cannot carry a filler stamp")
	}
	q, err := os.ReadFile("../../testdata/dns/query-a-example.com.bin")
	if err != nil {
		t.Fatal(err)
	}
	if classifyPayload(q) != dnsID {
		t.Fatal("the DNS query fixture is not recognised as DNS")
	}
	stamp(dnsID, q, 0x1_beef, 0)
	if seq, _, _ := replySeq(dnsID, q); seq != 0xbeef {
		t.Fatalf("DNS ID carries %x", seq)
	}
	if classifyPayload([]byte("<34>1 2026-11-25T08:00:00Z host app - - - hello")) != opaque {
		t.Fatal("a syslog line classified as DNS")
	}
}

func TestDiffServer(t *testing.T) {
	k := func(l, s string) shardKey { return shardKey{Listener: l, Proto: "udp", Shard: s} }
	before := serverStats{rx: map[shardKey]float64{k("a", "0"): 10, k("a", "1"): 10, k("b", "0"): 5}, drops: map[shardKey]float64{}}
	after := serverStats{rx: map[shardKey]float64{k("a", "0"): 40, k("a", "1"): 20, k("b", "0"): 5}, drops: map[shardKey]float64{k("a", "1"): 3}}
	d := diffServer(before, after)
	if d.Received != 40 || d.KernelDrops != 3 || len(d.Shards) != 2 || d.Imbalance != 1.5 {
		t.Fatalf("diff = %+v", d)
	}
}

func FuzzParseServerStats(f *testing.F) {
	f.Add("# TYPE shardd_rx_packets_total counter\nshardd_rx_packets_total{listener=\":1\",proto=\"udp\",shard=\"0\"} 5\n")
	f.Add("shardd_kernel_drops_total{shard=\"1\"} 1e3\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := parseServerStats(strings.NewReader(text))
		if err == nil && len(s.rx) == 0 {
			t.Fatal("success without receive counters")
		}
	})
}

// TestLostRepliesDoNotStallEcho drops every tenth request at the server: the
// flows must keep going (their window slots come back after --timeout) and
// the books must still balance.
func TestLostRepliesDoNotStallEcho(t *testing.T) {
	var swallowed atomic.Uint64
	lossy := packet.HandlerFunc(func(w *packet.ReplyWriter, p *packet.Packet) error {
		if seq, _, ok := replySeq(filler, p.Data); ok && seq%10 == 0 {
			swallowed.Add(1)
			return nil
		}
		_, err := w.Write(p.Data)
		return err
	})
	srv := startServer(t, lossy)
	const flows, window = 4, 4
	// --wait is what every reply the server sends gets to arrive: the run
	// always waits all of it (a tenth of the replies never come), so it
	// is a few seconds, ample for a loaded machine's scheduling.
	s, _ := runLoad(t, "--mode", "echo", "--duration", "1s", "--rate", "2000", "--flows", strconv.Itoa(flows), "--window", strconv.Itoa(window), "--timeout", "50ms", "--wait", "3s", srv.addr)
	// Without the timeout each flow stops for good once its window holds
	// only swallowed requests: after about window x 10 requests. Twice
	// that over all flows means the window slots came back.
	if stalled := uint64(flows * window * 10); s.Sent <= 2*stalled {
		t.Fatalf("sent only %d (a flow stalls for good after about %d): lost replies stalled the flows", s.Sent, stalled/flows)
	}
	// Every request reaches the server; wait for its counters.
	var rx, tx uint64
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(5 * time.Millisecond) {
		rx, tx = 0, 0
		for _, st := range srv.g.Stats(nil) {
			rx, tx = rx+st.RxPackets, tx+st.TxPackets
		}
		if rx >= s.Sent || time.Now().After(deadline) {
			break
		}
	}
	if rx != s.Sent || tx != *s.Received || *s.Lost != swallowed.Load() {
		t.Fatalf("server got %d of %d sent, answered %d and swallowed %d; shardload matched %d and lost %d", rx, s.Sent, tx, swallowed.Load(), *s.Received, *s.Lost)
	}
	if *s.LossPct < 8 || *s.LossPct > 12 {
		t.Fatalf("sent %d, received %d, lost %d (%.1f%%): want about 10%% lost", s.Sent, *s.Received, *s.Lost, *s.LossPct)
	}
}

func TestProgressShowsServerReceiveRate(t *testing.T) {
	srv := startServer(t, packet.Discard{})
	var stdout, stderr bytes.Buffer
	// Three seconds: two ticks, so one is seen even when a loaded machine
	// runs the ticker late (its time is then not exactly 1.0 s either).
	code := mainCode([]string{"--duration", "3s", "--rate", "5000", "--metrics", srv.metricsURL, srv.addr}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if !regexp.MustCompile(`^\[ *[0-9]+\.[0-9]s\] sent .* recv `).MatchString(first) {
		t.Fatalf("progress line %q: want sent/s and the server's recv/s", first)
	}
	if !strings.Contains(stdout.String(), "server      received") {
		t.Fatalf("summary without the server's side:\n%s", stdout.String())
	}
}

// TestRatePacingStopsOnTime checks a low rate: even pacing, and the run ends
// at --duration rather than after a burst's worth of waiting.
func TestRatePacingStopsOnTime(t *testing.T) {
	srv := startServer(t, packet.Discard{})
	s, _ := runLoad(t, "--duration", "1s", "--rate", "10", "--flows", "1", "--wait", waitTimeout.String(), "--metrics", srv.metricsURL, srv.addr)
	// The sending time shardload measured itself, not the wall clock of the
	// whole run (start-up, the wait for the server's count): the pacer's
	// doing only. A pacer that waited out a burst would take seconds more.
	if s.DurationSec > 3 {
		t.Fatalf("a 1 s run sent for %.2f s", s.DurationSec)
	}
	if s.Sent < 9 || s.Sent > 11 {
		t.Fatalf("sent %d at 10/s for 1 s", s.Sent)
	}
}

func TestGSOOnRefusesHugeDatagrams(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainCode([]string{"--gso", "on", "--size", "40000", "--duration", "100ms", "127.0.0.1:9"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--gso on") {
		t.Fatalf("exit %d, stderr %q; want 2 and a line about --gso on", code, stderr.String())
	}
}

type dnsStyleEcho struct{ packet.LengthPrefixed }

func (dnsStyleEcho) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	_, err := w.Write(p.Data)
	return err
}

// TestTCPEcho runs echo over TCP connections: a raw stream with generated
// payloads, and DNS-style length-prefixed frames with the DNS query fixture.
func TestTCPEcho(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler packet.Handler
		args    []string
	}{
		{"raw", packet.Echo{}, []string{"--size", "100"}},
		{"length-prefixed", dnsStyleEcho{}, []string{"--payload", "../../testdata/dns/query-a-example.com.bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			srv := startServerConfig(t, shard.Config{Addr: "127.0.0.1:0", Shards: 2, TCP: true, NewHandler: func(int) packet.Handler { return h }})
			// No --metrics: over a raw TCP stream the server counts reads,
			// not messages, so shardload's wait for the server's count
			// would last all of --wait; the test reads the server itself.
			args := append([]string{"--proto", "tcp", "--mode", "echo", "--duration", "1s", "--flows", "8", "--rate", "5000", "--wait", waitTimeout.String()}, tc.args...)
			s, _ := runLoad(t, append(args, srv.addr)...)
			if s.Received == nil || *s.Lost != 0 || s.Unexpected != 0 || s.Sent == 0 {
				t.Fatalf("TCP echo: %+v", s)
			}
			var accepted, txBytes uint64
			for deadline := time.Now().Add(waitTimeout); ; time.Sleep(5 * time.Millisecond) {
				accepted, txBytes = 0, 0
				for _, st := range srv.g.Stats(nil) {
					accepted += st.Accepted
					txBytes += st.TxBytes
				}
				if txBytes >= *s.Received*uint64(s.Size) || time.Now().After(deadline) {
					break
				}
			}
			if accepted != 8 {
				t.Fatalf("server accepted %d connections, want 8", accepted)
			}
			if want := *s.Received * uint64(s.Size); txBytes != want {
				t.Fatalf("server sent %d reply bytes, shardload matched %d replies of %d bytes", txBytes, *s.Received, s.Size)
			}
			if s.RTT == nil || s.RTT.P50 <= 0 {
				t.Fatalf("no RTT: %+v", s.RTT)
			}
		})
	}
}

// TestHelpExitsZero: --help and -h list every flag with its default on
// stdout and exit 0; --size takes the size syntax.
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := mainCode([]string{arg}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "Usage: shardload") || stderr.Len() != 0 {
			t.Errorf("shardload %s: exit %d, stdout %q, stderr %q", arg, code, stdout.String(), stderr.String())
		}
		for _, want := range []string{"--duration DURATION", "(default 5s)", "--size VALUE", "(default 64)", "--flows N", "(default 64)"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("shardload %s does not show %q:\n%s", arg, want, stdout.String())
			}
		}
	}
	cfg, err := parseFlags([]string{"--size", "1k", "127.0.0.1:9"}, io.Discard)
	if err != nil || cfg.size != 1024 {
		t.Fatalf("--size 1k: %+v, %v", cfg, err)
	}
}
