package metrics

import (
	"crypto/sha256"
	_ "embed" // the status page's style and script
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The status page: one HTML document, its style and script inline, that
// reads /status.json every 2 s and draws per listener and shard what the
// collectors expose (rates are computed in the browser from successive
// samples). Label values reach the page only as JSON strings and through
// textContent, never as markup.
var (
	//go:embed status/status.css
	statusCSS string
	//go:embed status/status.js
	statusJS string

	statusHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>shardd status</title>
<style>` + statusCSS + `</style></head>
<body><header><h1>shardd</h1><p id="state" class="state">loading…</p></header>
<section id="overview" class="card" aria-label="process"></section>
<main id="listeners"></main>
<section id="handler"></section>
<footer>From <a href="/metrics">/metrics</a> via <a href="/status.json">/status.json</a>, every 2 s.</footer>
<script>` + statusJS + `</script></body></html>
`
	// statusCSP admits the page's own style and script by hash and
	// nothing else but its fetches of /status.json.
	statusCSP = "default-src 'none'; script-src '" + cspHash(statusJS) + "'; style-src '" + cspHash(statusCSS) +
		"'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// cspHash is the CSP source expression of an inline element's text.
func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// securityHeaders are set on every status reply.
func securityHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func serveStatusPage(w http.ResponseWriter, _ *http.Request) {
	securityHeaders(w.Header(), "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", statusCSP)
	_, _ = w.Write([]byte(statusHTML))
}

// statusDoc is /status.json: the shardd_* series of one Gather.
type statusDoc struct {
	Time    float64                 `json:"time"` // when gathered, seconds since the epoch
	Error   string                  `json:"error,omitempty"`
	Metrics map[string]statusFamily `json:"metrics"`
}

type statusFamily struct {
	Type    string         `json:"type"` // counter, gauge, histogram, summary, untyped
	Samples []statusSample `json:"samples"`
}

// statusSample is one series. Value is nil when it is not finite (JSON has
// no NaN); a histogram or summary gives its count as Value and its Sum.
type statusSample struct {
	Labels map[string]string `json:"labels"`
	Value  *float64          `json:"value"`
	Sum    *float64          `json:"sum,omitempty"`
}

// statusJSON serves g's shardd_* families as a statusDoc. Like /metrics,
// a collector that fails leaves out its own series only.
func statusJSON(g prometheus.Gatherer) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		fams, err := g.Gather()
		doc := statusDoc{Time: float64(time.Now().UnixMilli()) / 1e3, Metrics: map[string]statusFamily{}}
		if err != nil {
			doc.Error = err.Error()
		}
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "shardd_") {
				doc.Metrics[f.GetName()] = statusFamilyOf(f)
			}
		}
		securityHeaders(w.Header(), "application/json")
		// encoding/json escapes <, > and & in strings: a label value
		// cannot close a script or become markup wherever it lands.
		_ = json.NewEncoder(w).Encode(doc)
	}
}

func statusFamilyOf(f *dto.MetricFamily) statusFamily {
	sf := statusFamily{Type: strings.ToLower(f.GetType().String()), Samples: make([]statusSample, 0, len(f.GetMetric()))}
	for _, m := range f.GetMetric() {
		s := statusSample{Labels: make(map[string]string, len(m.GetLabel()))}
		for _, l := range m.GetLabel() {
			s.Labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Counter != nil:
			s.Value = finite(m.Counter.GetValue())
		case m.Gauge != nil:
			s.Value = finite(m.Gauge.GetValue())
		case m.Untyped != nil:
			s.Value = finite(m.Untyped.GetValue())
		case m.Histogram != nil:
			s.Value, s.Sum = finite(float64(m.Histogram.GetSampleCount())), finite(m.Histogram.GetSampleSum())
		case m.Summary != nil:
			s.Value, s.Sum = finite(float64(m.Summary.GetSampleCount())), finite(m.Summary.GetSampleSum())
		}
		sf.Samples = append(sf.Samples, s)
	}
	return sf
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
