package metrics

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// hostile is a label value that would run script if the page or its data
// put it anywhere as markup.
const hostile = `</script><img id="pwned" src=x onerror="document.title='pwned'">"&'`

// statusRegistry has the shard collector over two listeners (one named
// hostile), a histogram, and series that are not shardd's.
func statusRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	a := Snapshot{Listener: "127.0.0.1:53", Proto: "udp", Shard: 0, KernelDrops: 7, QueueBytes: 1536}
	a.RxPackets, a.TxPackets, a.Batches = 300, 290, 3
	a.BatchSizes[0], a.BatchSizes[7] = 1, 2
	b := Snapshot{Listener: "127.0.0.1:53", Proto: "udp", Shard: 1}
	b.RxPackets = 100
	c := Snapshot{Listener: hostile, Proto: "tcp", Shard: 0, Inode: 99}
	c.RxPackets, c.Accepted = 5, 2
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(staticSource{a, b, c}, nil),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shardd_foreign_sockets", Help: "h", ConstLabels: prometheus.Labels{"listener": hostile}}, func() float64 { return 2 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shardd_not_a_number", Help: "h"}, func() float64 { return math.NaN() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "other_gauge", Help: "h"}, func() float64 { return 1 }))
	return reg
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

// TestStatusPageIsSelfContained: / and /status serve one HTML document
// whose inline style and script are exactly what the CSP's hashes admit,
// with no other source allowed and nothing loaded from elsewhere.
func TestStatusPageIsSelfContained(t *testing.T) {
	h := Handler(prometheus.NewRegistry())
	for _, path := range []string{"/", "/status"} {
		w := get(t, h, http.MethodGet, path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		body, csp := w.Body.String(), w.Header().Get("Content-Security-Policy")
		for _, el := range []string{"script", "style"} {
			m := regexp.MustCompile(`(?s)<`+el+`>(.*?)</`+el+`>`).FindAllStringSubmatch(body, -1)
			if len(m) != 1 {
				t.Fatalf("GET %s: %d <%s> elements, want 1", path, len(m), el)
			}
			sum := sha256.Sum256([]byte(m[0][1]))
			want := el + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if !strings.HasPrefix(csp, "default-src 'none';") || !strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"?(https?:|//)|url\(|@import`).FindString(body); m != "" {
			t.Errorf("GET %s: the page loads something from elsewhere: %q", path, m)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
	if w := get(t, h, http.MethodHead, "/status"); w.Code != http.StatusOK {
		t.Errorf("HEAD /status: %d", w.Code)
	}
	for _, path := range []string{"/status/", "/statusx", "/index.html"} {
		if w := get(t, h, http.MethodGet, path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
}

// seriesKey names one series: its name and its labels, sorted.
func seriesKey(name string, labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+strconv.Quote(v))
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// exposition is the shardd_* series of /metrics' text, parsed: for a
// histogram its count and sum.
func exposition(t *testing.T, text string) map[string][2]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "shardd_") {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v [2]float64
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				v = [2]float64{float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()}
			case dto.MetricType_COUNTER:
				v[0] = m.GetCounter().GetValue()
			default:
				v[0] = m.GetGauge().GetValue()
			}
			out[seriesKey(name, labels)] = v
		}
	}
	return out
}

// TestStatusJSONMatchesMetrics: /status.json carries every shardd_* series
// of /metrics with the same labels and value (a histogram's count and sum),
// a non-finite value as null, and nothing else.
func TestStatusJSONMatchesMetrics(t *testing.T) {
	h := Handler(statusRegistry(t))
	w := get(t, h, http.MethodGet, "/status.json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var doc statusDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Time <= 0 || doc.Error != "" {
		t.Errorf("time %v, error %q", doc.Time, doc.Error)
	}
	want := exposition(t, get(t, h, http.MethodGet, "/metrics").Body.String())
	got := map[string][2]float64{}
	for name, f := range doc.Metrics {
		for _, s := range f.Samples {
			k := seriesKey(name, s.Labels)
			if s.Value == nil {
				got[k] = [2]float64{math.NaN()}
				continue
			}
			v := [2]float64{*s.Value}
			if s.Sum != nil {
				v[1] = *s.Sum
			}
			got[k] = v
		}
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok || (g != v && !(math.IsNaN(v[0]) && math.IsNaN(g[0]))) {
			t.Errorf("%s: /metrics %v, /status.json %v (present %v)", k, v, g, ok)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("/status.json has %s, /metrics does not", k)
		}
	}
	rx := seriesKey("shardd_rx_packets_total", map[string]string{"listener": "127.0.0.1:53", "proto": "udp", "shard": "1"})
	if got[rx][0] != 100 || len(got) < 20 {
		t.Errorf("%s = %v in %d series", rx, got[rx], len(got))
	}
	if f := doc.Metrics["shardd_rx_batch_size"]; f.Type != "histogram" {
		t.Errorf("shardd_rx_batch_size is a %q", f.Type)
	}
}

// TestStatusJSONEscapesLabels: a label value with markup in it is carried
// verbatim but never as raw markup characters.
func TestStatusJSONEscapesLabels(t *testing.T) {
	body := get(t, Handler(statusRegistry(t)), http.MethodGet, "/status.json").Body.String()
	for _, raw := range []string{"<", ">", "&"} {
		if strings.Contains(body, raw) {
			t.Errorf("/status.json has a raw %q", raw)
		}
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, name := range []string{"shardd_foreign_sockets", "shardd_rx_packets_total"} {
		for _, s := range doc.Metrics[name].Samples {
			if s.Labels["listener"] == hostile {
				found++
			}
		}
	}
	if found != 2 {
		t.Errorf("the hostile listener name came back verbatim in %d of 2 series", found)
	}
	if page := get(t, Handler(statusRegistry(t)), http.MethodGet, "/status").Body.String(); strings.Contains(page, "pwned") {
		t.Error("the page itself carries a label value")
	}
}

// TestStatusUnderServerLimits: the status paths are served by Server
// within its limits like /metrics: a POST is refused and its connection
// closed, an oversized header refused.
func TestStatusUnderServerLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, statusRegistry(t), Limits{MaxHeaderBytes: 1 << 10}, zap.NewNop())
	go func() { _ = s.Serve() }()
	defer s.Close()
	base := "http://" + s.Addr().String()
	for _, path := range []string{"/", "/status", "/status.json"} {
		resp, err := http.Post(base+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !resp.Close {
			t.Errorf("POST %s: %d, close %v; want 405 and the connection closed", path, resp.StatusCode, resp.Close)
		}
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET %s with a 16 KiB header (the limit is 1 KiB, and net/http allows 4 KiB over it): %d, want 431", path, resp.StatusCode)
		}
	}
	if got := s.closed[closedMethod].Load(); got != 3 {
		t.Errorf("closed for method: %d, want 3", got)
	}
}
