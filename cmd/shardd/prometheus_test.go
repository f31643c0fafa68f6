//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shardd/shardd/cmd/internal/ports"
	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/cmd/internal/tooltest"
)

// The Prometheus rules and Grafana dashboard in metrics/, run against the
// daemon: every name they use is in a real /metrics, and the real
// Prometheus server (Debian package prometheus) scraping shardd fires the
// kernel-drops alert when drops are provoked.

const (
	rulesPath     = "../../metrics/shardd.rules.yml"
	dashboardPath = "../../metrics/grafana-dashboard.json"
	rulesTestPath = "../../metrics/shardd.rules.test.yml"
)

// exposedNames are the names on a /metrics page: of its samples and of
// its metric families (a histogram's own name is on its # TYPE line only).
func exposedNames(page string, into map[string]bool) {
	for _, line := range strings.Split(page, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			into[f[2]] = true
		} else if i := strings.IndexAny(line, "{ "); i > 0 && line[0] != '#' {
			into[line[:i]] = true
		}
	}
}

// usedNameRe matches the exported series names the rules and the dashboard
// refer to (in queries, descriptions and annotations alike).
var usedNameRe = regexp.MustCompile(`\b(?:shardd|process|go)_[a-z0-9_]*[a-z0-9]\b`)

// usedNames are the series names the file at path (the rules, their unit
// tests or the dashboard) uses.
func usedNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, n := range usedNameRe.FindAllString(string(b), -1) {
		used[n] = true
	}
	if len(used) < 5 {
		t.Errorf("%s: only %d names found: the check would not see a drift", path, len(used))
	}
	return used
}

// xdpOnly says whether name appears only on a daemon with --xdp, which
// needs root and an interface of its own (network namespaces):
// TestPrometheusXDPNamesExposed checks those names against one.
func xdpOnly(name string) bool { return strings.HasPrefix(name, "shardd_xdp_") }

// exposedRun is one daemon of TestPrometheusNamesExposed: its flags, and
// a series to wait for before the scrape (besides the probe datagram).
type exposedRun struct {
	args    []string
	waitFor string
}

// TestPrometheusNamesExposed: every series name the rules file, its unit
// tests and the dashboard use is served by a daemon today, exactly (a
// histogram's _bucket, _sum and _count included). It runs one daemon per
// handler family: echo on UDP and TCP, DNS, syslog to a file and to an
// in-test Kafka cluster (kfake), TLS, and a DNS secondary of an in-test
// shardd primary (the zone series appear once it has transferred). The
// AF_XDP names are checked by TestPrometheusXDPNamesExposed.
func TestPrometheusNamesExposed(t *testing.T) {
	dir := t.TempDir()
	sink := filepath.Join(dir, "sink.ndjson")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	newTestCA(t, dir).issue(t, 1, cert, key)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "syslog"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	_, _, primary, _ := xfrPrimary(t, "127.0.0.1", 0)
	runs := []exposedRun{
		{args: []string{"--proto", "udp,tcp"}},
		{args: append([]string{"--handler", "dns"}, exampleZones...)},
		{args: []string{"--handler", "syslog", "--sink", sink}},
		{args: []string{"--handler", "syslog", "--sink", "kafka://" + cluster.ListenAddrs()[0] + "/syslog"}, waitFor: "shardd_sink_partition_records_total"},
		{args: []string{"--tls", "127.0.0.2:0", "--tls-cert", cert, "--tls-key", key}}, // the TLS series
		{args: []string{"--handler", "dns", "--secondary", "xfr.test.@" + primary.String()}, waitFor: "shardd_dns_zone_last_refresh_timestamp_seconds"},
	}
	exposed := map[string]bool{}
	for _, run := range runs {
		exposedNames(scrapeRun(t, run), exposed)
	}
	for _, must := range []string{"shardd_dns_queries_total", "shardd_dns_responses_total", "shardd_syslog_written_total", "shardd_tcp_active",
		"shardd_rx_batch_size_bucket", "shardd_tls_cert_expiry_seconds", "shardd_sink_broker_connections", "shardd_dns_zone_expired", "shardd_dns_transfers_total"} {
		if !exposed[must] {
			t.Fatalf("%s is not on any daemon's /metrics: the runs above did not expose what they should", must)
		}
	}
	for _, path := range []string{rulesPath, rulesTestPath, dashboardPath} {
		used := usedNames(t, path)
		var missing []string
		xdp := 0
		for n := range used {
			if xdpOnly(n) {
				xdp++
			} else if !exposed[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s uses series no daemon exposes (renamed or removed?): %s", filepath.Base(path), strings.Join(missing, ", "))
		}
		t.Logf("%s: %d names checked against the %d exposed (%d AF_XDP names left to TestPrometheusXDPNamesExposed)", filepath.Base(path), len(used)-xdp, len(exposed), xdp)
	}
}

// scrapeRun starts shardd with run's flags, sends it one datagram, waits
// for it to count it (and for run.waitFor), and returns its /metrics page.
func scrapeRun(t *testing.T, run exposedRun) string {
	t.Helper()
	d := plainDaemon(t, append(append([]string{"--shards", "2", "--metrics", "127.0.0.1:0"}, run.args...), "127.0.0.1:0")...)
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	// Some series (DNS queries by type) appear with the first message:
	// an A query, which the echo and syslog handlers take as well.
	c, err := net.Dial("udp", bound.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(dnsQuery(t)[2:]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	testkit.PollFor(t, "the probe datagram counted", testkit.WaitTimeout, func() bool {
		page, err := testkit.Get(metricsURL)
		return err == nil && testkit.MetricSum(page, "shardd_rx_packets_total", `proto="udp"`) > 0 &&
			(run.waitFor == "" || strings.Contains(page, "\n"+run.waitFor))
	})
	page := testkit.Scrape(t, metricsURL)
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("shardd %v: exit %d:\n%s", run.args, code, d.Stderr)
	}
	return page
}

// shortFor returns the rules with the for: of one alert set to d, so
// that an end-to-end test need not wait minutes.
func shortFor(t *testing.T, rules, alert, d string) string {
	t.Helper()
	start := strings.Index(rules, "- alert: "+alert+"\n")
	if start < 0 {
		t.Fatalf("%s: no alert %s", rulesPath, alert)
	}
	end := len(rules)
	if next := strings.Index(rules[start+1:], "- alert: "); next >= 0 {
		end = start + 1 + next
	}
	block := rules[start:end]
	re := regexp.MustCompile(`(?m)^(\s+for: )\S+$`)
	if len(re.FindAllString(block, -1)) != 1 {
		t.Fatalf("%s: alert %s has no single for: line:\n%s", rulesPath, alert, block)
	}
	return rules[:start] + re.ReplaceAllString(block, "${1}"+d) + rules[end:]
}

// promAPI fetches a Prometheus HTTP API path and decodes its data.
func promAPI(base, path string, data any) error {
	page, err := testkit.Get(base + path)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(page), &r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: status %q", path, r.Status)
	}
	return json.Unmarshal(r.Data, data)
}

// promQuery runs an instant query: its result vector.
func promQuery(base, q string) ([]json.RawMessage, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	err := promAPI(base, "/api/v1/query?query="+url.QueryEscape(q), &data)
	return data.Result, err
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
	Value  string            `json:"value"`
}

// alertState returns the state (pending, firing) of the alert named name
// for listener, "" when Prometheus has none.
func alertState(t *testing.T, base, name, listener string) string {
	t.Helper()
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := promAPI(base, "/api/v1/alerts", &data); err != nil {
		t.Fatal(err)
	}
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && a.Labels["listener"] == listener {
			return a.State
		}
	}
	return ""
}

// startPrometheus runs the Prometheus server on a free loopback port,
// scraping target as job shardd every second with rules (the text of a
// rules file) evaluated every second. It returns the server's URL once
// the target is up and rules are loaded.
func startPrometheus(t *testing.T, target, rules string) string {
	t.Helper()
	bin := tooltest.Require(t, "prometheus")
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: shardd
    static_configs:
      - targets: [%q]
`, target)
	for name, text := range map[string]string{"prometheus.yml": config, "rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port, err := ports.BelowEphemeral("127.0.0.1", true)
	if err != nil {
		t.Skip(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.format=json")
	p := testkit.Start(t, "prometheus", cmd)
	base := "http://" + listen
	testkit.PollFor(t, "Prometheus ready", testkit.WaitTimeout, func() bool {
		select {
		case <-p.Exited:
			t.Fatalf("prometheus exited (code %d):\n%s", p.Code, p.Stderr)
		default:
		}
		_, err := testkit.Get(base + "/-/ready")
		return err == nil
	})
	testkit.PollFor(t, "the shardd target up in Prometheus", testkit.WaitTimeout, func() bool {
		var data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				ScrapeURL string `json:"scrapeUrl"`
			} `json:"activeTargets"`
		}
		return promAPI(base, "/api/v1/targets", &data) == nil && len(data.ActiveTargets) == 1 &&
			data.ActiveTargets[0].Health == "up" && strings.Contains(data.ActiveTargets[0].ScrapeURL, target)
	})
	return base
}

// dashboardQueries are the PromQL queries of the dashboard's panels with
// Grafana's variables replaced as Grafana would (every instance and
// listener, a 1m rate interval, a 5m range).
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "5m", "$instance", ".*", "$listener", ".*")
	var qs []string
	for _, m := range regexp.MustCompile(`"expr": ("(?:[^"\\]|\\.)*")`).FindAllStringSubmatch(string(b), -1) {
		var q string
		if err := json.Unmarshal([]byte(m[1]), &q); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, vars.Replace(q))
	}
	if len(qs) < 20 {
		t.Fatalf("%s: only %d queries found", dashboardPath, len(qs))
	}
	return qs
}

// checkDashboard runs every dashboard query on the Prometheus server at
// base: each must parse and evaluate. It returns the number of queries
// that returned data.
func checkDashboard(t *testing.T, base string) (queries, withData int) {
	t.Helper()
	for _, q := range dashboardQueries(t) {
		result, err := promQuery(base, q)
		if err != nil {
			t.Errorf("dashboard query %s: %v", q, err)
			continue
		}
		queries++
		if len(result) > 0 {
			withData++
		}
	}
	return queries, withData
}

// procState is the state letter of /proc/PID/stat (R, S, T...).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// waitFiring polls Prometheus until the alert name fires for listener
// (90 s at most) and returns how long after since it was seen firing.
func waitFiring(t *testing.T, base, name, listener string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		state := alertState(t, base, name, listener)
		if state == "firing" {
			return time.Since(since).Round(100 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s for %s is %q 90 s after it was provoked, want firing", name, listener, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPrometheusAlertsFireOnDropsAndForeignSocket runs shardd with a tiny
// receive buffer under the real Prometheus server (metrics/shardd.rules.yml
// with the for: of the two alerts under test cut to 1s). It stops shardd
// (SIGSTOP) while a bounded burst arrives, so that the kernel drops most of
// it, lets it go on, and waits for SharddKernelDrops to fire for its
// listener; then it binds a socket of its own on shardd's port and waits
// for SharddForeignSockets.
func TestPrometheusAlertsFireOnDropsAndForeignSocket(t *testing.T) {
	tooltest.Require(t, "prometheus")
	rulesText, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	rules := shortFor(t, string(rulesText), "SharddKernelDrops", "1s")
	rules = shortFor(t, rules, "SharddForeignSockets", "1s")

	d := plainDaemon(t, "--shards", "1", "--rcvbuf", "4K", "--handler", "discard", "--guard-interval", "200ms", "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	listening := d.WaitLine(t, "listening")
	bound := netip.MustParseAddrPort(listening["bound"].(string))
	listener := listening["addr"].(string)
	metricsAddr := d.WaitLine(t, "serving metrics")["addr"].(string)
	metricsURL := "http://" + metricsAddr + "/metrics"
	base := startPrometheus(t, metricsAddr, rules)

	// Prometheus holds a sample of the counter before the drops (increase
	// needs two) and the rule is loaded with the short for:; nothing fires.
	testkit.PollFor(t, "Prometheus to hold shardd_kernel_drops_total = 0", testkit.WaitTimeout, func() bool {
		var data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		}
		q := "/api/v1/query?query=" + url.QueryEscape(`shardd_kernel_drops_total{job="shardd"}`)
		return promAPI(base, q, &data) == nil && len(data.Result) == 1 && data.Result[0].Value[1] == "0"
	})
	var rulesData struct {
		Groups []struct {
			Rules []struct {
				Name     string  `json:"name"`
				Duration float64 `json:"duration"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := promAPI(base, "/api/v1/rules", &rulesData); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rulesData.Groups {
		for _, r := range g.Rules {
			loaded++
			if (r.Name == "SharddKernelDrops" || r.Name == "SharddForeignSockets") && r.Duration != 1 {
				t.Fatalf("%s loaded with for: %vs, want 1s", r.Name, r.Duration)
			}
		}
	}
	if want := strings.Count(rules, "- alert: ") + strings.Count(rules, "- record: "); loaded != want {
		t.Fatalf("Prometheus loaded %d rules, the file has %d", loaded, want)
	}
	for _, a := range []string{"SharddKernelDrops", "SharddForeignSockets"} {
		if s := alertState(t, base, a, listener); s != "" {
			t.Fatalf("%s is %s before it was provoked", a, s)
		}
	}

	// The burst: shardd stopped (its queue holds a few datagrams of the
	// burst), a bounded count sent, then it goes on.
	pid := d.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	testkit.PollFor(t, "shardd stopped", testkit.WaitTimeout, func() bool { return procState(pid) == "T" })
	const burst = 2000
	c, err := net.Dial("udp", bound.String())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 512)
	for i := 0; i < burst; i++ {
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	burstAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// shardd accounts for every datagram, and the kernel dropped some.
	var rx, drops float64
	testkit.PollFor(t, "shardd to account for the burst", testkit.WaitTimeout, func() bool {
		page, err := testkit.Get(metricsURL)
		if err != nil {
			return false
		}
		rx = testkit.MetricSum(page, "shardd_rx_packets_total", "")
		drops = testkit.MetricSum(page, "shardd_kernel_drops_total", "")
		return rx+drops == burst
	})
	if drops == 0 {
		t.Fatalf("the kernel dropped none of %d datagrams sent to a stopped shardd (received %v)", burst, rx)
	}
	t.Logf("burst of %d: %v received, %v dropped by the kernel (shardd_kernel_drops_total)", burst, rx, drops)

	t.Logf("SharddKernelDrops firing for %s %v after the burst", listener, waitFiring(t, base, "SharddKernelDrops", listener, burstAt))

	// A socket of the test (shardd's user) joins the port: the guard
	// counts it, and the alert fires.
	testkit.BindReusePort(t, int(bound.Port()))
	boundAt := time.Now()
	testkit.PollFor(t, "shardd_foreign_sockets = 1", testkit.WaitTimeout, func() bool {
		page, err := testkit.Get(metricsURL)
		return err == nil && testkit.MetricSum(page, "shardd_foreign_sockets", "") == 1
	})
	t.Logf("SharddForeignSockets firing for %s %v after the bind", listener, waitFiring(t, base, "SharddForeignSockets", listener, boundAt))

	// The dashboard's queries parse and run against what Prometheus holds
	// now; the kernel drops panel shows the drops.
	drop := `sum by (listener, proto, shard) (rate(shardd_kernel_drops_total{instance=~".*", listener=~".*"}[1m]))`
	if !slices.Contains(dashboardQueries(t), drop) {
		t.Fatalf("%s has no query %s", dashboardPath, drop)
	}
	// The recording rules ran on the real server too.
	for _, q := range []string{drop, "shardd:rx_packets:rate1m", "shardd:kernel_drops:ratio_rate5m", "shardd:shard_imbalance:rate5m"} {
		if result, err := promQuery(base, q); err != nil || len(result) != 1 {
			t.Errorf("%s: %v, %d series, want 1", q, err, len(result))
		}
	}
	n, withData := checkDashboard(t, base)
	t.Logf("dashboard: %d queries evaluated by Prometheus, %d with data (no DNS, syslog or TCP listener ran)", n, withData)
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("shardd exit %d:\n%s", code, d.Stderr)
	}
}
