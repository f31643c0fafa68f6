package dns

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// hotQueries covers each path of the query code: exact answers, a CNAME
// chain, wildcard synthesis, a referral below a cut, NXDOMAIN, NODATA,
// REFUSED, truncation and EDNS.
func hotQueries(t testing.TB) [][]byte {
	var out [][]byte
	for i, q := range []*mdns.Msg{
		newQuery("example.com.", mdns.TypeA),
		newQuery("WWW.example.com.", mdns.TypeA),
		newQuery("a1b2.apps.example.com.", mdns.TypeA),
		newQuery("deep.sub.example.com.", mdns.TypeA),
		newQuery("nope.example.com.", mdns.TypeA),
		newQuery("ftp.example.com.", mdns.TypeAAAA),
		newQuery("example.org.", mdns.TypeA),
		newQuery("big.example.com.", mdns.TypeTXT),
		newQuery("example.com.", mdns.TypeMX),
	} {
		if i%2 == 0 {
			q.SetEdns0(1232, false)
		}
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestServePacketAllocatesNothing(t *testing.T) {
	h := newTestServer(t).NewHandler(0)
	qs := hotQueries(t)
	rq := assertNoAllocs(t, h, qs, "192.0.2.1:53")
	if len(rq.Replies()) != len(qs) {
		t.Fatalf("%d replies to %d queries", len(rq.Replies()), len(qs))
	}
}

// assertNoAllocs serves qs from src as one batch, again and again, and
// fails if that allocates; it returns the queue of the last batch.
func assertNoAllocs(t *testing.T, h *Handler, qs [][]byte, src string) *packet.ReplyQueue {
	t.Helper()
	rq := packet.NewReplyQueue(64, 64*65536, 65507)
	p := &packet.Packet{Src: netip.MustParseAddrPort(src), Proto: packet.UDP}
	allocs := testing.AllocsPerRun(200, func() {
		rq.Reset()
		for _, q := range qs {
			p.Data = q
			if err := h.ServePacket(rq.Begin(p), p); err != nil {
				t.Fatal(err)
			}
		}
		h.Publish() // the shard's end of batch
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per %d queries, want 0", allocs, len(qs))
	}
	return rq
}

// BenchmarkServePacket is the handler's cost per query (make bench-go),
// with its share of the per-batch Publish (one per 64 queries).
func BenchmarkServePacket(b *testing.B) {
	benchQueries(b, newTestServer(b), false, []benchQuery{
		{"A", newQuery("example.com.", mdns.TypeA)},
		{"cname-chain", newQuery("www.example.com.", mdns.TypeA)},
		{"wildcard", newQuery("a1b2.apps.example.com.", mdns.TypeA)},
		{"nxdomain", newQuery("nope.example.com.", mdns.TypeA)},
		{"referral", newQuery("deep.sub.example.com.", mdns.TypeA)},
	})
}

// benchQuery is one query a benchmark serves, by its sub-benchmark's name.
type benchQuery struct {
	name string
	q    *mdns.Msg
}

// benchQueries runs a sub-benchmark serving each query (with EDNS, and the
// DO bit if do) from a handler of s.
func benchQueries(b *testing.B, s *Server, do bool, qs []benchQuery) {
	h := s.NewHandler(0)
	rq := packet.NewReplyQueue(64, 64*65536, 65507)
	p := &packet.Packet{Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: packet.UDP}
	for _, c := range qs {
		c.q.SetEdns0(1232, do)
		raw, _ := c.q.Pack()
		b.Run(c.name, func(b *testing.B) {
			p.Data = raw
			benchServe(b, h, rq, p)
		})
	}
}

// benchServe serves p b.N times in batches of 64, as a shard does
// (Publish after each batch).
func benchServe(b *testing.B, h *Handler, rq *packet.ReplyQueue, p *packet.Packet) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if rq.Len() == 64 {
			h.Publish()
			rq.Reset()
		}
		if err := h.ServePacket(rq.Begin(p), p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadZone200k loads a zone of 200,000 records (100,000 names with
// an A and an AAAA each) and reports the heap its answers take.
// go test -run '^$' -bench LoadZone200k -benchtime 1x ./packet/dns
func BenchmarkLoadZone200k(b *testing.B) {
	var text strings.Builder
	text.WriteString("$ORIGIN big.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
	for i := range 100000 {
		fmt.Fprintf(&text, "h%d A 10.%d.%d.%d\nh%d AAAA 2001:db8::%x:%x\n", i, i>>16&255, i>>8&255, i&255, i, i>>16, i&65535)
	}
	f := filepath.Join(b.TempDir(), "big.zone")
	if err := os.WriteFile(f, []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var heap uint64
	for i := 0; i < b.N; i++ {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		z, err := LoadZone(f)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap = m1.HeapAlloc - m0.HeapAlloc
		runtime.KeepAlive(z)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}
