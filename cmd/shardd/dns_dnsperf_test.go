//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestDnsperfLosesNothing runs dnsperf (the Debian package) for a few
// seconds at a modest rate, from the bench's query file, against the
// daemon: every query is answered, and the daemon counts exactly the
// responses dnsperf received, per rcode.
func TestDnsperfLosesNothing(t *testing.T) {
	dnsperf := requireTool(t, "dnsperf")
	d := startDaemon(t, "--handler", "dns", "--proto", "udp", "--shards", "2", "--metrics", "127.0.0.1:0",
		"--zone", "../../testdata/dns/example.com.zone", "--zone", "../../testdata/dns/2.0.192.in-addr.arpa.zone", "127.0.0.1:0")
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"

	// A count, not a rate: the query file (50 queries) 300 times, at most
	// 5000/s and 100 outstanding (so no burst can overflow a socket
	// buffer). Every query is answered however loaded the machine: the
	// timeout before one counts as lost is 30 s, not a rate a busy CI
	// machine may not reach.
	const rate, rounds, perRound = 5000, 300, 50
	ctx, cancel := context.WithTimeout(context.Background(), 5*testkit.WaitTimeout)
	defer cancel()
	// Four clients (source ports) so both shards answer; EDNS so that
	// big.example.com TXT fits.
	args := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(int(port)), "-d", "../../testdata/dns/queries.txt",
		"-n", strconv.Itoa(rounds), "-Q", strconv.Itoa(rate), "-q", "100", "-c", "4", "-t", "30", "-e"}
	out, err := exec.CommandContext(ctx, dnsperf, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	field := func(name string) uint64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^\s*` + name + `:\s+(\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("dnsperf printed no %q:\n%s", name, out)
		}
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		return v
	}
	sent, completed, lost := field("Queries sent"), field("Queries completed"), field("Queries lost")
	if lost != 0 || completed != sent || sent != rounds*perRound {
		t.Fatalf("dnsperf: sent %d, completed %d, lost %d; want all %d answered:\n%s", sent, completed, lost, rounds*perRound, out)
	}

	// The daemon's count of responses is dnsperf's, rcode by rcode.
	codes := map[string]float64{}
	line := regexp.MustCompile(`(?m)^\s*Response codes:\s+(.*)$`).FindSubmatch(out)
	if line == nil {
		t.Fatalf("dnsperf printed no response codes:\n%s", out)
	}
	for _, m := range regexp.MustCompile(`([A-Z]+) (\d+)`).FindAllStringSubmatch(string(line[1]), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		codes[m[1]] = v
	}
	if len(codes) != 2 || codes["NOERROR"] == 0 || codes["NXDOMAIN"] == 0 {
		t.Errorf("response codes %v: the query file should give NOERROR and NXDOMAIN only", codes)
	}
	text := testkit.Scrape(t, url)
	total, series := testkit.SumMetric(t, text, "shardd_dns_responses_total")
	if total != float64(completed) {
		t.Errorf("shardd_dns_responses_total sums to %v over %d series; dnsperf completed %d", total, series, completed)
	}
	for rcode, n := range codes {
		if got := testkit.MetricSum(text, "shardd_dns_responses_total", fmt.Sprintf(`rcode="%s"`, rcode)); got != n {
			t.Errorf("shardd_dns_responses_total{rcode=%q} = %v, dnsperf counted %v", rcode, got, n)
		}
	}
	if drops, _ := testkit.SumMetric(t, text, "shardd_kernel_drops_total"); drops != 0 {
		t.Errorf("kernel drops %v", drops)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
}
