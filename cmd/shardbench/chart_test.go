package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// box is a rectangle in SVG user units.
type box struct {
	x0, y0, x1, y1 float64
	what           string
}

func (b box) String() string {
	return fmt.Sprintf("%s [%.1f,%.1f]-[%.1f,%.1f]", b.what, b.x0, b.y0, b.x1, b.y1)
}

func (b box) overlaps(o box) bool {
	return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1
}

// svgGeometry reads a chart back from its SVG text (not from the renderer's
// own bookkeeping): the viewBox, the boxes of every drawn shape, and those
// of every text, sized with the estimate the renderer uses (textWidth; an
// ascent of 0.8 and a descent of 0.25 font sizes), honouring text-anchor
// and a rotate(-90 x y) transform.
func svgGeometry(t *testing.T, svg string) (view box, shapes, texts []box) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	num := func(attrs []xml.Attr, name string, def float64) float64 {
		for _, a := range attrs {
			if a.Name.Local == name {
				v, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
				if err != nil {
					t.Fatalf("attribute %s=%q: %v", name, a.Value, err)
				}
				return v
			}
		}
		return def
	}
	str := func(attrs []xml.Attr, name string) string {
		for _, a := range attrs {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	fontSize := []float64{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("svg does not parse: %v\n%s", err, svg)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end && len(fontSize) > 0 {
				fontSize = fontSize[:len(fontSize)-1]
			}
			continue
		}
		inherited := 12.0
		if len(fontSize) > 0 {
			inherited = fontSize[len(fontSize)-1]
		}
		size := num(se.Attr, "font-size", inherited)
		fontSize = append(fontSize, size)
		a := se.Attr
		switch se.Name.Local {
		case "svg":
			f := strings.Fields(str(a, "viewBox"))
			if len(f) != 4 {
				f = []string{"0", "0", str(a, "width"), str(a, "height")}
			}
			var v [4]float64
			for i := range f {
				v[i], _ = strconv.ParseFloat(f[i], 64)
			}
			view = box{v[0], v[1], v[0] + v[2], v[1] + v[3], "viewBox"}
		case "rect":
			if str(a, "width") == "100%" {
				continue // the background
			}
			x, y := num(a, "x", 0), num(a, "y", 0)
			shapes = append(shapes, box{x, y, x + num(a, "width", 0), y + num(a, "height", 0), "rect"})
		case "line":
			x1, x2, y1, y2 := num(a, "x1", 0), num(a, "x2", 0), num(a, "y1", 0), num(a, "y2", 0)
			shapes = append(shapes, box{math.Min(x1, x2), math.Min(y1, y2), math.Max(x1, x2), math.Max(y1, y2), "line"})
		case "text":
			var content string
			if err := dec.DecodeElement(&content, &se); err != nil {
				t.Fatal(err)
			}
			fontSize = fontSize[:len(fontSize)-1] // DecodeElement consumed the end
			x, y := num(a, "x", 0), num(a, "y", 0)
			w := textWidth(content, size)
			x0 := x
			switch str(a, "text-anchor") {
			case "middle":
				x0 = x - w/2
			case "end":
				x0 = x - w
			}
			b := box{x0, y - 0.8*size, x0 + w, y + 0.25*size, fmt.Sprintf("text %q", content)}
			if tr := str(a, "transform"); tr != "" {
				if tr != fmt.Sprintf("rotate(-90 %s %s)", str(a, "x"), str(a, "y")) || str(a, "text-anchor") != "" {
					t.Fatalf("text %q: transform %q: only rotate(-90 x y) about its anchor, start-anchored, is supported", content, tr)
				}
				// Rotated a quarter turn counter-clockwise about (x, y): the
				// text runs upwards from y, its ascent to the left of x.
				b = box{x - 0.8*size, y - w, x + 0.25*size, y, b.what}
			}
			texts = append(texts, b)
		}
	}
	return view, shapes, texts
}

// checkLayout fails unless every shape and text lies inside the viewBox and
// no two texts overlap.
func checkLayout(t *testing.T, name, svg string) {
	t.Helper()
	view, shapes, texts := svgGeometry(t, svg)
	if view.x1 <= view.x0 || len(texts) == 0 || len(shapes) == 0 {
		t.Fatalf("%s: nothing drawn (viewBox %v, %d shapes, %d texts)", name, view, len(shapes), len(texts))
	}
	const eps = 0.01
	for _, b := range append(append([]box{}, shapes...), texts...) {
		if b.x0 < view.x0-eps || b.y0 < view.y0-eps || b.x1 > view.x1+eps || b.y1 > view.y1+eps {
			t.Errorf("%s: %v lies outside the %v", name, b, view)
		}
	}
	for i := range texts {
		for j := i + 1; j < len(texts); j++ {
			if texts[i].overlaps(texts[j]) {
				t.Errorf("%s: %v overlaps %v", name, texts[i], texts[j])
			}
		}
	}
}

// fixedReport is a full suite's result with long peer names: six loads,
// eight servers, some of them only in UDP or TCP loads.
func fixedReport() *report {
	servers := []server{{Name: "naive", Baseline: true}, {Name: "shardd 1 shard"}, {Name: "shardd 2 shards"}, {Name: "shardd 2 shards --pin"},
		{Name: "shardd 2 shards --pin --steer cpu", UDPOnly: true}, {Name: "shardd 2 shards --tcp-shape goroutines", TCPOnly: true},
		{Name: "my-very-own-udp-server-with-a-long-name"}, {Name: "x"}}
	var scenarios []scenario
	for _, m := range []string{"discard", "echo", "tcp-echo"} {
		for _, s := range []int{64, 512} {
			scenarios = append(scenarios, scenario{Mode: m, Size: s})
		}
	}
	var samples []sample
	for si, sc := range scenarios {
		for i, srv := range servers {
			if !srv.runs(sc) {
				continue
			}
			for rep := 1; rep <= 3; rep++ {
				rate := 100e3 * (1 + float64(i*(si+1)%7)*0.6) * (1 + 0.1*float64(rep))
				if sc.Mode == "tcp-echo" {
					rate = 100e3 + float64(rep) // every server alike, as on loopback
				}
				samples = append(samples, sample{Server: srv.Name, Scenario: sc.String(), Rep: rep, Rate: rate})
			}
		}
	}
	r := buildReport(servers, scenarios, samples, 3, 2*time.Second, time.Minute)
	r.machine = machineInfo{CPU: "AMD EPYC", CPUs: 2, Kernel: "6.18", Go: "go1.26.8", Date: "2026-11-30 13:45 UTC"}
	return r
}

// fixedDNS is a dns mode's result: three servers, two clients, three
// repetitions and the zero-loss check.
func fixedDNS() *dnsResult {
	r := &dnsResult{Servers: []string{"knot (2 UDP workers)", "shardd (2 shards, one per CPU)", "shardd 1 shard"}, Queries: "testdata/dns/queries.txt",
		Reps: 3, Duration: "2s", clients: []string{"dnsperf", "shardload"}, zeroRate: 20000, zeroDur: 3 * time.Second, baseline: "knot (2 UDP workers)",
		machine: machineInfo{Date: "2026-11-30 13:45 UTC"}}
	for i, srv := range r.Servers {
		for rep := 1; rep <= 3; rep++ {
			r.Samples = append(r.Samples, dnsSample{Server: srv, Client: "dnsperf", Rep: rep, QPS: 213e3 + float64(i*10e3+rep*3e3), Lost: uint64(296 * (1 - min(i, 1)))},
				dnsSample{Server: srv, Client: "shardload", Rep: rep, QPS: 322e3 + float64(i*20e3+rep*5e3)})
		}
		r.ZeroLoss = append(r.ZeroLoss, dnsSample{Server: srv, Client: "dnsperf -Q 20000", Sent: 60000, Completed: 60000, QPS: 19998.7})
	}
	return r
}

// fixedSyslog is a syslog mode's result: two servers, three rounds.
func fixedSyslog() *syslogResult {
	r := &syslogResult{Duration: "3s", Rsyslog: "rsyslogd 8.2302.0 (aka 2023.02)", date: "2026-11-30 13:45 UTC"}
	for i, name := range []string{"shardd 2 shards", "rsyslogd imudp (2 threads)"} {
		var rounds []syslogProbe
		for _, v := range []float64{650e3, 650e3, 800e3} {
			rounds = append(rounds, syslogProbe{Server: name, Offered: v / float64(i+1), Sent: 1, Written: 1})
		}
		r.Rounds = append(r.Rounds, rounds)
		r.Best = append(r.Best, rounds[1])
		r.Overload = append(r.Overload, syslogProbe{Server: name, Offered: 1.34e6, Sent: 2641152, Written: 2035763 / uint64(i+1)})
	}
	return r
}

// TestChartLayout renders the charts from fixed results and checks their
// geometry: every element inside the viewBox, no two labels overlapping.
func TestChartLayout(t *testing.T) {
	r := fixedReport()
	checkLayout(t, "chart.svg", r.svg())
	checkLayout(t, "chart-dns.svg", fixedDNS().svg())
	checkLayout(t, "chart-syslog.svg", fixedSyslog().svg())
	// One load and two servers: few, wide bars.
	small := buildReport(r.servers[:2], r.scenarios[:1], []sample{{Server: "naive", Scenario: "discard 64B", Rate: 1e5}, {Server: "shardd 1 shard", Scenario: "discard 64B", Rate: 3.2e5}}, 1, time.Second, time.Second)
	checkLayout(t, "chart.svg, one load", small.svg())
}

// TestChartsWritten: each mode that ran has its chart in the output
// directory, with its bars; a mode that did not run (or was skipped) has none.
func TestChartsWritten(t *testing.T) {
	rep := fixedReport()
	res := results{DNS: fixedDNS(), Syslog: fixedSyslog()}
	dir := t.TempDir()
	if err := writeResults(dir, "md", res, charts(rep, res)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"chart.svg": "shardd 2 shards --pin --steer cpu, discard 64B", "chart-dns.svg": "shardd 1 shard, shardload: ",
		"chart-syslog.svg": "rsyslogd imudp (2 threads): wrote 1017881 of 2641152"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%s", name, want, b)
		}
	}
	only := charts(&report{}, results{DNS: &dnsResult{Skipped: "no knotd"}})
	if len(only) != 0 {
		t.Errorf("charts without a UDP load, a skipped dns mode and no syslog mode: %v", slices.Collect(maps.Keys(only)))
	}
}
