package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/shard/netnstest"
)

// TestPrometheusXDPNamesExposed checks the AF_XDP names the rules, their
// unit tests and the dashboard use (TestPrometheusNamesExposed leaves
// them out: they need --xdp, root and an interface) against a daemon with
// --xdp on a veth pair in the test's own network namespaces, one series
// per shard each.
func TestPrometheusXDPNamesExposed(t *testing.T) {
	p := netnstest.NewPair(t, 2)
	d := startXDPDaemon(t, p, nil, "--shards", "2", "--metrics", "127.0.0.1:0", fmt.Sprintf(":%d", xdpPort))
	d.WaitLine(t, "XDP program attached")
	d.WaitLine(t, "listening")
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"

	used := map[string]bool{}
	for _, path := range []string{rulesPath, rulesTestPath, dashboardPath} {
		for n := range usedNames(t, path) {
			if xdpOnly(n) {
				used[n] = true
			}
		}
	}
	// The alert SharddXDPDrops uses these two at least.
	for _, must := range []string{"shardd_xdp_rx_dropped_total", "shardd_xdp_rx_ring_full_total"} {
		if !used[must] {
			t.Fatalf("%s is not used by the rules or the dashboard: the check has nothing to check", must)
		}
	}
	// Each shard's socket is bound when its series appear: wait for all.
	var missing []string
	deadline := time.Now().Add(testkit.WaitTimeout)
	for {
		page := scrapeIn(t, p.B, metricsURL)
		missing = missing[:0]
		for n := range used {
			if _, series := testkit.SumMetric(t, page, n); series != 2 {
				missing = append(missing, fmt.Sprintf("%s (%d series)", n, series))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s, %s, %s use AF_XDP series shardd --xdp does not expose on each of its 2 shards: %s", filepath.Base(rulesPath),
			filepath.Base(rulesTestPath), filepath.Base(dashboardPath), strings.Join(missing, ", "))
	}
	t.Logf("%d AF_XDP names checked against shardd --xdp %s", len(used), p.DevB)
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
}
