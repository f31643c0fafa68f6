//go:build linux

package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestKnotShardKnotChain: Knot DNS primary -> shardd (--secondary, and the
// primary of the next: --xfr-listen, --allow-transfer key:xfr, --notify
// with the key) -> Knot DNS secondary, every hop TSIG-signed with one key
// from --tsig-keys. The zone refreshes hourly, so a change on the first
// Knot that reaches the last within the test came by NOTIFY and IXFR at
// both hops; the last Knot answers as the first.
func TestKnotShardKnotChain(t *testing.T) {
	port, lastPort := testkit.FreePort(t), testkit.FreePort(t)
	k := startKnotPrimary(t, 2026113001, port)
	ours := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	last := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(lastPort))
	d := startDaemon(t, "--handler", "dns", "--proto", "udp", "--shards", "2", "--metrics", "127.0.0.1:0",
		"--tsig-keys", k.keyFile, "--secondary", "notify.test@"+k.addr.String()+"/key=xfr",
		"--xfr-listen", ours.String(), "--allow-transfer", "key:xfr", "--notify", last.String()+",key:xfr", ours.String())
	d.WaitLine(t, "serving zone transfers")
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	waitAnswer(t, ours, "NOERROR", "version 2026113001", "txt.notify.test", "TXT")
	lastLog := knotSecondaryOf(t, "notify.test", lastPort, port, "xfr:"+k.secret)
	waitDigShort(t, last, "txt.notify.test", "TXT", "version 2026113001", lastLog)

	start := time.Now()
	k.bump(t, 2026113002)
	defer func() {
		if t.Failed() {
			t.Logf("shardd's log:\n%s\nthe first Knot's log:\n%s", d.Stderr, k.proc.Stderr)
		}
	}()
	waitAnswer(t, ours, "NOERROR", "version 2026113002", "txt.notify.test", "TXT")
	waitDigShort(t, last, "txt.notify.test", "TXT", "version 2026113002", lastLog)
	t.Logf("the change reached the last Knot %v after the first one's reload began", time.Since(start).Round(time.Millisecond))
	testkit.PollFor(t, "the last Knot's log of the IXFR", testkit.WaitTimeout, func() bool {
		return strings.Contains(lastLog.String(), "IXFR, incoming") && strings.Contains(lastLog.String(), "serial 2026113001 -> 2026113002")
	})
	for _, q := range [][]string{{"notify.test", "SOA"}, {"www.notify.test", "AAAA"}, {"txt.notify.test", "TXT"}, {"nope.notify.test", "A"}} {
		sameAsKnot(t, k.addr, last, append([]string{"+nocmd"}, q...)...)
	}
	m := testkit.Scrape(t, url)
	for _, series := range []string{`result="ok",type="ixfr",zone="notify.test."`, `result="sent",type="ixfr",zone="notify.test."`} {
		if n := testkit.MetricSum(m, "shardd_dns_transfers_total", series); n < 1 {
			t.Errorf("shardd_dns_transfers_total{%s} = %v, want at least 1", series, n)
		}
	}
	if n := testkit.MetricSum(m, "shardd_dns_zone_info", `source="transfer",zone="notify.test."`); n != 1 {
		t.Errorf("shardd_dns_zone_info of notify.test: %v, want source transfer", n)
	}
}
