//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/metrics"
)

// headless runs Debian's chromium without a display on url with args
// (--dump-dom, --screenshot=...) and returns what it printed on stdout.
// The page's script runs for 5 s of virtual time: its first fetches of
// status.json, 2 s apart, have been drawn.
func headless(t *testing.T, url string, args ...string) []byte {
	t.Helper()
	bin := requireTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// domNode is an element of a dumped DOM.
type domNode struct{ *html.Node }

func (n domNode) attr(key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func (n domNode) text() string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
		for k := c.FirstChild; k != nil; k = k.NextSibling {
			walk(k)
		}
	}
	walk(n.Node)
	return b.String()
}

// find is every element below n for which match is true.
func (n domNode) find(match func(domNode) bool) []domNode {
	var out []domNode
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if e := (domNode{c}); match(e) {
			out = append(out, e)
		}
		out = append(out, domNode{c}.find(match)...)
	}
	return out
}

func byAttr(key, val string) func(domNode) bool {
	return func(n domNode) bool { return n.attr(key) == val }
}

// statusDOM loads url in chromium until the page has drawn at least two
// samples of status.json (so its rates are computed), and returns the DOM.
func statusDOM(t *testing.T, url string) domNode {
	t.Helper()
	return pageState(t, url, "drawn two samples", func(st domNode) bool {
		n, _ := strconv.Atoi(st.attr("data-fetched"))
		return n >= 2
	})
}

// pageState loads url in chromium until the page's state line (#state)
// satisfies ok, and returns the DOM.
func pageState(t *testing.T, url, what string, ok func(domNode) bool) domNode {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		doc, err := html.Parse(bytes.NewReader(headless(t, url, "--dump-dom")))
		if err != nil {
			t.Fatal(err)
		}
		root := domNode{doc}
		if st := root.find(byAttr("id", "state")); len(st) == 1 && ok(st[0]) {
			return root
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page had not %s within 60 s; DOM:\n%s", what, renderNode(doc))
		}
	}
}

func renderNode(n *html.Node) string {
	var b bytes.Buffer
	_ = html.Render(&b, n)
	return b.String()
}

// shownInt is a number the page shows as an exact integer (thin spaces
// group its digits).
func shownInt(t *testing.T, n domNode) float64 {
	t.Helper()
	s := strings.ReplaceAll(strings.TrimSpace(n.text()), "\u202f", "")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("the page shows %q where a count belongs (%v)", n.text(), err)
	}
	return v
}

// queryDNS sends n queries over UDP from flows sockets, a third of them for
// a name that does not exist, and waits for every reply.
func queryDNS(t *testing.T, to netip.AddrPort, flows, perFlow int) {
	t.Helper()
	for f := 0; f < flows; f++ {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perFlow; i++ {
			m := new(dns.Msg)
			name := "www.example.com."
			if (f*perFlow+i)%3 == 0 {
				name = "nope.example.com."
			}
			m.SetQuestion(name, dns.TypeA)
			b, _ := m.Pack()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
			if _, err := c.Read(make([]byte, 1500)); err != nil {
				t.Fatalf("flow %d query %d: %v", f, i, err)
			}
		}
		c.Close()
	}
}

// TestStatusPageInChromium: the real daemon's status page, loaded in
// headless Chromium after a known number of DNS queries, shows per shard
// the received counts and per rcode the responses that /metrics has, and
// renders at phone and desktop sizes.
func TestStatusPageInChromium(t *testing.T) {
	requireTool(t, "chromium")
	_, bound, metricsURL := dnsDaemon(t, "--zone", "../../testdata/dns/example.com.zone")
	const flows, perFlow = 30, 10
	queryDNS(t, bound, flows, perFlow)
	var text string
	testkit.PollFor(t, "the queries in shardd_rx_packets_total", testkit.WaitTimeout, func() bool {
		text = testkit.Scrape(t, metricsURL)
		return testkit.MetricSum(text, "shardd_rx_packets_total", `proto="udp"`) == flows*perFlow
	})
	base := strings.TrimSuffix(metricsURL, "/metrics")
	dom := statusDOM(t, base+"/status")

	rows := dom.find(func(n domNode) bool { return n.Data == "tr" && n.attr("data-listener") != "" })
	udpRows, shown := 0, 0.0
	for _, tr := range rows {
		match := fmt.Sprintf(`listener=%q,proto=%q,shard=%q}`, tr.attr("data-listener"), tr.attr("data-proto"), tr.attr("data-shard"))
		for col, name := range map[string]string{"rx": "shardd_rx_packets_total", "tx": "shardd_tx_packets_total"} {
			cell := tr.find(byAttr("data-col", col))
			if len(cell) != 1 {
				t.Fatalf("row %s has %d %q cells", match, len(cell), col)
			}
			got, want := shownInt(t, cell[0]), testkit.MetricSum(text, name, match)
			if got != want {
				t.Errorf("%s%s: the page shows %v, /metrics has %v", name, match, got, want)
			}
			if col == "rx" && tr.attr("data-proto") == "udp" {
				udpRows++
				shown += got
			}
		}
	}
	if udpRows != 2 || shown != flows*perFlow {
		t.Errorf("the page shows %d UDP shard rows receiving %v datagrams, want 2 rows and %d", udpRows, shown, flows*perFlow)
	}
	checkRcodes(t, dom, text)
	t.Logf("the page (%d shard rows) shows what /metrics has: %v UDP datagrams over 2 shards", len(rows), shown)
	// Traffic while the screenshots are taken, for rates to show: 16
	// queries a millisecond at most, for their few seconds.
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	query, _ := m.Pack()
	s := testkit.StartSender(t, bound, query)
	screenshots(t, base+"/status")
	s.Stop()
}

// checkRcodes compares the page's DNS responses by rcode with /metrics.
func checkRcodes(t *testing.T, dom domNode, text string) {
	t.Helper()
	for _, rcode := range []string{"NOERROR", "NXDOMAIN"} {
		tr := dom.find(byAttr("data-rcode", rcode))
		if len(tr) != 1 {
			t.Fatalf("%d rows for rcode %s", len(tr), rcode)
		}
		cell := tr[0].find(byAttr("data-col", "responses"))
		want := testkit.MetricSum(text, "shardd_dns_responses_total", `rcode="`+rcode+`"`)
		if len(cell) != 1 || want == 0 || shownInt(t, cell[0]) != want {
			t.Errorf("%s responses: the page shows %q, /metrics has %v", rcode, tr[0].text(), want)
		}
	}
}

// screenshots takes the page at a phone's and a desktop's size, under the
// test's temp dir (and SHARDD_SCREENSHOT_DIR, if set, to keep them).
func screenshots(t *testing.T, url string) {
	t.Helper()
	dir := t.TempDir()
	for _, size := range []struct{ name, w, h string }{{"phone", "390", "844"}, {"desktop", "1280", "800"}} {
		path := filepath.Join(dir, "status-"+size.name+".png")
		headless(t, url, "--hide-scrollbars", "--window-size="+size.w+","+size.h, "--screenshot="+path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || strconv.Itoa(cfg.Width) != size.w || strconv.Itoa(cfg.Height) != size.h {
			t.Fatalf("%s: %v, %dx%d, want %sx%s", path, err, cfg.Width, cfg.Height, size.w, size.h)
		}
		if keep := os.Getenv("SHARDD_SCREENSHOT_DIR"); keep != "" {
			if err := os.WriteFile(filepath.Join(keep, filepath.Base(path)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("screenshot %s: %s (%d bytes)", size.name, path, len(b))
	}
}

// snapshots is a fixed metrics.Source.
type snapshots []metrics.Snapshot

func (s snapshots) Stats(dst []metrics.Snapshot) []metrics.Snapshot { return append(dst, s...) }

// TestStatusPageEscapesInChromium: a listener name that is markup shows as
// text; no element of it exists and no script of it ran.
func TestStatusPageEscapesInChromium(t *testing.T) {
	requireTool(t, "chromium")
	const hostile = `<img id="pwned" src=x onerror="document.title='pwned'"></script><b id="pwned2">`
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(snapshots{{Listener: hostile, Proto: "udp"}}, nil))
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	dom := statusDOM(t, srv.URL+"/status")
	if n := dom.find(func(n domNode) bool { return strings.HasPrefix(n.attr("id"), "pwned") }); len(n) != 0 {
		t.Fatalf("the listener name became markup: %s", renderNode(n[0].Node))
	}
	if title := dom.find(func(n domNode) bool { return n.Data == "title" }); len(title) != 1 || title[0].text() != "shardd status" {
		t.Fatal("the page's title changed: a script from the label ran")
	}
	h2 := dom.find(func(n domNode) bool { return n.Data == "h2" && n.text() == "UDP "+hostile })
	sec := dom.find(byAttr("data-listener", hostile))
	if len(h2) != 1 || len(sec) != 2 { // the section and its one row
		t.Fatalf("the hostile name is shown as text in %d headings and %d elements carry it, want 1 and 2", len(h2), len(sec))
	}
}

// factValue is the value a fact (<li><span>name</span><b>value</b>) shows.
func factValue(t *testing.T, li domNode) string {
	t.Helper()
	b := li.find(func(n domNode) bool { return n.Data == "b" })
	if len(b) != 1 {
		t.Fatalf("fact %q has %d values", li.attr("data-fact"), len(b))
	}
	return b[0].text()
}

// TestStatusPageSyslogInChromium: with a sink that fails (/dev/full), the
// page shows per shard the messages and the queue that /metrics has, and
// the sink's errors by kind with a state that is not "ok".
func TestStatusPageSyslogInChromium(t *testing.T) {
	requireTool(t, "chromium")
	d := startDaemon(t, "--handler", "syslog", "--sink", "/dev/full", "--shards", "2", "--metrics", "127.0.0.1:0", "127.0.0.1:0")
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	const n = 40
	for i := 0; i < n; i++ { // one socket each: source ports spread them over the shards
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(bound))
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(c, "<34>1 2026-11-30T14:00:00Z host app - - - message %d", i)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	var before string
	testkit.PollFor(t, "the messages accepted and a sink error", testkit.WaitTimeout, func() bool {
		before = testkit.Scrape(t, metricsURL)
		return testkit.MetricSum(before, "shardd_syslog_messages_total", "") == n && testkit.MetricSum(before, "shardd_syslog_sink_errors_total", `kind="disk_full"`) > 0
	})
	dom := statusDOM(t, strings.TrimSuffix(metricsURL, "/metrics")+"/status")
	after := testkit.Scrape(t, metricsURL)
	sec := dom.find(byAttr("data-handler", "syslog"))
	if len(sec) != 1 {
		t.Fatalf("%d syslog sections", len(sec))
	}
	rows := sec[0].find(func(n domNode) bool { return n.Data == "tr" && n.attr("data-shard") != "" })
	for _, tr := range rows {
		match := fmt.Sprintf(`shard=%q}`, tr.attr("data-shard"))
		for col, name := range map[string]string{"messages": "shardd_syslog_messages_total", "queue-depth": "shardd_syslog_queue_depth", "written": "shardd_syslog_written_total"} {
			cell := tr.find(byAttr("data-col", col))
			if len(cell) != 1 || shownInt(t, cell[0]) != testkit.MetricSum(after, name, match) {
				t.Errorf("shard %s %s: the page shows %q, /metrics has %v", tr.attr("data-shard"), col, tr.text(), testkit.MetricSum(after, name, match))
			}
		}
	}
	state, errs := sec[0].find(byAttr("data-fact", "sink")), sec[0].find(byAttr("data-fact", "sink-errors"))
	if len(rows) != 2 || len(state) != 1 || len(errs) != 1 {
		t.Fatalf("%d shard rows, %d sink states, %d sink error facts", len(rows), len(state), len(errs))
	}
	stateText, errsText := factValue(t, state[0]), factValue(t, errs[0])
	if stateText == "ok" {
		t.Errorf("a failing sink shows as %q", stateText)
	}
	var shown float64
	if _, err := fmt.Sscanf(errsText, "disk_full %g", &shown); err != nil {
		t.Fatalf("sink errors shown as %q: %v", errsText, err)
	}
	lo, hi := testkit.MetricSum(before, "shardd_syslog_sink_errors_total", ""), testkit.MetricSum(after, "shardd_syslog_sink_errors_total", "")
	if shown < lo || shown > hi {
		t.Errorf("the page shows %v disk_full errors; /metrics had %v before it loaded and %v after", shown, lo, hi)
	}
	t.Logf("syslog: %d messages queued behind a failing sink; the page shows sink %q, errors %q", n, stateText, errsText)
}

// TestStatusPageShowsStaleInChromium: when status.json stops answering,
// the page says its numbers are stale, and why, and keeps the last ones.
func TestStatusPageShowsStaleInChromium(t *testing.T) {
	requireTool(t, "chromium")
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(snapshots{{Listener: "127.0.0.1:53", Proto: "udp"}}, nil))
	h := metrics.Handler(reg)
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			served.Store(0) // a new load: its first status.json is answered
		}
		if r.URL.Path == "/status.json" && served.Add(1) > 1 {
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dom := pageState(t, srv.URL+"/status", "said it is stale", func(st domNode) bool {
		return st.attr("class") == "state bad"
	})
	st := dom.find(byAttr("id", "state"))[0].text()
	if !strings.HasPrefix(st, "stale: HTTP 503 · last update ") {
		t.Errorf("state line %q", st)
	}
	if rows := dom.find(byAttr("data-listener", "127.0.0.1:53")); len(rows) != 2 {
		t.Errorf("the last sample's listener is drawn in %d elements, want its section and row", len(rows))
	}
}
