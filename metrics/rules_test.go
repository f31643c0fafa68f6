package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The Prometheus rules and the Grafana dashboard shipped beside the
// collectors: shardd.rules.yml, its promtool unit tests
// shardd.rules.test.yml, and grafana-dashboard.json.
const (
	rulesFile     = "shardd.rules.yml"
	rulesTestFile = "shardd.rules.test.yml"
	dashboardFile = "grafana-dashboard.json"
)

// promtool returns the path of promtool (Debian package prometheus). This
// package may not import cmd/internal/tooltest, so this is its rule:
// missing, the test skips, except under SHARDD_REQUIRE_TOOLS=1 (CI).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool is not installed (Debian package prometheus), and SHARDD_REQUIRE_TOOLS=1")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	alertRe  = regexp.MustCompile(`(?m)^\s+- alert: (\w+)$`)
	recordRe = regexp.MustCompile(`(?m)^\s+- record: (\S+)$`)
)

// alertNames lists the alerts a rules file defines, in file order.
func alertNames(rules string) []string {
	var names []string
	for _, m := range alertRe.FindAllStringSubmatch(rules, -1) {
		names = append(names, m[1])
	}
	return names
}

func TestRulesPromtoolCheck(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	// promtool counts what it parsed: every rule of the file.
	rules := readFile(t, rulesFile)
	n := len(alertRe.FindAllString(rules, -1)) + len(recordRe.FindAllString(rules, -1))
	if want := "SUCCESS: " + strconv.Itoa(n) + " rules found"; !strings.Contains(string(out), want) {
		t.Fatalf("promtool check rules: want %q:\n%s", want, out)
	}
	t.Logf("promtool check rules: %d rules", n)
}

// expectations reads the unit test file: for each alert name, whether some
// eval_time expects it not firing (exp_alerts: []) and some expects it
// firing (exp_alerts: followed by a list).
func expectations(t *testing.T, tests string) (quiet, firing map[string]bool) {
	t.Helper()
	quiet, firing = map[string]bool{}, map[string]bool{}
	current := ""
	for _, line := range strings.Split(tests, "\n") {
		f := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(f, "alertname:"):
			current = strings.TrimSpace(strings.TrimPrefix(f, "alertname:"))
		case f == "exp_alerts: []":
			quiet[current] = true
		case f == "exp_alerts:":
			firing[current] = true
		}
	}
	return quiet, firing
}

func TestRulesPromtoolTest(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "test", "rules", rulesTestFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules %s: %v\n%s", rulesTestFile, err, out)
	}
	alerts := alertNames(readFile(t, rulesFile))
	quiet, firing := expectations(t, readFile(t, rulesTestFile))
	for _, a := range alerts {
		if !quiet[a] || !firing[a] {
			t.Errorf("%s: %s tests it firing: %v, not firing: %v; want both", a, rulesTestFile, firing[a], quiet[a])
		}
	}
	t.Logf("promtool test rules: %d alerts, each tested firing and not firing", len(alerts))
}

// TestRulesPromtoolTestCatchesABrokenAlert proves the unit tests check
// every alert: with one alert renamed (so it never fires) in a copy of
// the rules, promtool test rules must fail, naming it.
func TestRulesPromtoolTestCatchesABrokenAlert(t *testing.T) {
	bin := promtool(t)
	rules, tests := readFile(t, rulesFile), readFile(t, rulesTestFile)
	for _, a := range alertNames(rules) {
		dir := t.TempDir()
		broken := strings.Replace(rules, "- alert: "+a+"\n", "- alert: "+a+"Broken\n", 1)
		if broken == rules {
			t.Fatalf("%s: cannot rename it in the copy", a)
		}
		if err := os.WriteFile(filepath.Join(dir, rulesFile), []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rulesTestFile), []byte(tests), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "test", "rules", rulesTestFile)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "alertname: "+a+",") {
			t.Errorf("%s never fires, yet promtool test rules: %v\n%s", a, err, out)
		}
	}
}

// metricRe matches the exported series names an expression or a text may
// use: shardd's own, and the Go and process collectors'.
var metricRe = regexp.MustCompile(`\b(?:shardd|process|go)_[a-z0-9_]*[a-z0-9]\b`)

// recordedRe matches recording rule names (level:metric:operations).
var recordedRe = regexp.MustCompile(`\bshardd:[a-z0-9_:]*[a-z0-9]\b`)

// readmeNames are the shardd_* names the README documents.
func readmeNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, n := range metricRe.FindAllString(readFile(t, "../README.md"), -1) {
		names[n] = true
	}
	if len(names) < 40 {
		t.Fatalf("the README names only %d metrics: is ../README.md the project's?", len(names))
	}
	return names
}

// documented says whether the README documents name: itself, or the
// histogram it is a _bucket, _sum or _count of. The Go and process
// collectors are documented as such, not name by name. The README does not
// say which metrics are histograms, so a suffix is allowed on any name;
// the daemon test (cmd/shardd TestPrometheusNamesExposed) checks every name
// exactly against a running daemon's /metrics.
func documented(readme map[string]bool, name string) bool {
	if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
		return true
	}
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && readme[base] {
			return true
		}
	}
	return false
}

// dashboardExprs returns every query of the dashboard: panel targets (rows
// included) and template variables. It fails the test if the JSON does not
// parse or lacks what Grafana needs to import it.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: uid %q, title %q, schemaVersion %d; want both set and a schema of Grafana 9 or later", dashboardFile, d.UID, d.Title, d.SchemaVersion)
	}
	var exprs []string
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			exprs = append(exprs, q.Query)
		}
	}
	for _, want := range []string{"datasource", "instance", "listener"} {
		if vars[want] == "" {
			t.Errorf("%s: no $%s variable", dashboardFile, want)
		}
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", dashboardFile, p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return exprs
}

// TestRulesAndDashboardNamesDocumented keeps the rules and the dashboard
// from drifting: every metric they name is in the README's metrics docs,
// and every recorded series they use is recorded by the rules file.
func TestRulesAndDashboardNamesDocumented(t *testing.T) {
	readme := readmeNames(t)
	// The check itself tells a misspelt or removed name apart.
	for _, bad := range []string{"shardd_kernel_drop_total", "shardd_rx_packets", "shardd_tcp_actives"} {
		if documented(readme, bad) {
			t.Fatalf("documented(%q) is true: the check cannot see a drift", bad)
		}
	}
	rules := readFile(t, rulesFile)
	recorded := map[string]bool{}
	for _, m := range recordRe.FindAllStringSubmatch(rules, -1) {
		recorded[m[1]] = true
	}
	sources := map[string]string{rulesFile: rules, rulesTestFile: readFile(t, rulesTestFile)}
	exprs := dashboardExprs(t)
	sources[dashboardFile] = strings.Join(exprs, "\n")
	for file, text := range sources {
		names := map[string]bool{}
		for _, n := range metricRe.FindAllString(text, -1) {
			names[n] = true
			if !documented(readme, n) {
				t.Errorf("%s uses %s, which the README does not document (renamed or removed?)", file, n)
			}
		}
		for _, n := range recordedRe.FindAllString(text, -1) {
			if !recorded[n] {
				t.Errorf("%s uses %s, which %s does not record", file, n, rulesFile)
			}
		}
		if len(names) < 5 {
			t.Errorf("%s: only %d metric names found: the check would not see a drift", file, len(names))
		}
		t.Logf("%s: %d metric names checked against the README", file, len(names))
	}
	// Every handler and every area has a panel.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"shardd_rx_packets_total", "shardd_tx_packets_total", "shardd_kernel_drops_total",
		"shardd_shard_imbalance", "shardd_rx_batch_size_bucket", "shardd_tcp_active", "shardd_tcp_closed_total",
		"shardd_dns_responses_total", "shardd_syslog_written_total", "shardd_syslog_dropped_total",
		"shardd_syslog_queue_depth", "shardd_foreign_sockets", "shardd_metrics_http_closed_total", "up{",
		"shardd_dns_zone_expired", "shardd_dns_zone_last_refresh_timestamp_seconds", "shardd_dns_transfers_total",
		"shardd_xdp_rx_dropped_total", "shardd_xdp_rx_ring_full_total", "shardd_sink_broker_connections"} {
		if !strings.Contains(all, want) {
			t.Errorf("%s: no panel queries %s", dashboardFile, want)
		}
	}
	keys := make([]string, 0, len(recorded))
	for k := range recorded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("recorded: %s", strings.Join(keys, ", "))
}
