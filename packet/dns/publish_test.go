package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardd/shardd/packet"
)

// TestCountsReachTheScrapeOnPublish: the handler counts in plain numbers
// and the scrape sees them once the shard has called Publish (after each
// batch), per transport, and not before.
func TestCountsReachTheScrapeOnPublish(t *testing.T) {
	s := newTestServer(t)
	h := s.NewHandler(3)
	q := newQuery("example.com.", mdns.TypeA)
	q.SetEdns0(1232, false)
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if exchange(t, h, raw, packet.UDP) == nil {
			t.Fatal("no reply")
		}
	}
	exchange(t, h, raw[:5], packet.TCP) // a runt: dropped as short
	const want = `
# HELP shardd_dns_dropped_total Messages not answered, by reason: response (QR set: replies are never answered), short (no header).
# TYPE shardd_dns_dropped_total counter
shardd_dns_dropped_total{proto="tcp",reason="response",shard="3"} 0
shardd_dns_dropped_total{proto="tcp",reason="short",shard="3"} 1
shardd_dns_dropped_total{proto="udp",reason="response",shard="3"} 0
shardd_dns_dropped_total{proto="udp",reason="short",shard="3"} 0
# HELP shardd_dns_queries_total DNS queries with a question, by shard, transport and qtype (types without a label of their own count as other).
# TYPE shardd_dns_queries_total counter
shardd_dns_queries_total{proto="udp",qtype="A",shard="3"} 3
# HELP shardd_dns_responses_total DNS responses sent, by shard, transport and rcode.
# TYPE shardd_dns_responses_total counter
shardd_dns_responses_total{proto="udp",rcode="NOERROR",shard="3"} 3
`
	names := []string{"shardd_dns_queries_total", "shardd_dns_responses_total", "shardd_dns_dropped_total"}
	before := `
# HELP shardd_dns_dropped_total Messages not answered, by reason: response (QR set: replies are never answered), short (no header).
# TYPE shardd_dns_dropped_total counter
shardd_dns_dropped_total{proto="udp",reason="response",shard="3"} 0
shardd_dns_dropped_total{proto="udp",reason="short",shard="3"} 0
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(before), names...); err != nil {
		t.Fatalf("before Publish the scrape must see nothing: %v", err)
	}
	h.Publish()
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	h.Publish() // nothing new: the same figures
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestDropReasonLabels(t *testing.T) {
	for r, want := range map[dropReason]string{dropResponse: "response", dropShort: "short", dropReason(numDropReasons): "dropReason(2)"} {
		if got := r.String(); got != want {
			t.Errorf("dropReason(%d) = %q, want %q", r, got, want)
		}
	}
}
