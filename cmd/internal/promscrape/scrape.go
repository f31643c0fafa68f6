// Package promscrape fetches a Prometheus text exposition (shardd's /metrics)
// and reads series out of it, for the tools that watch a running shardd
// (shardload, shardd inspect).
package promscrape

import (
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Timeout is what the tools give one scrape.
const Timeout = 5 * time.Second

// Families is one scrape: the metric families by name.
type Families map[string]*dto.MetricFamily

// Get fetches url within timeout and parses the exposition. A status other
// than 200 is an error.
func Get(url string, timeout time.Duration) (Families, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads a Prometheus text exposition.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	return fams, nil
}

// Label returns the value of m's label name, "" when m has none.
func Label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// SumBy adds up the series of the counter name by key: the series key
// maps to one value add up. Series of another type are skipped; a family
// the scrape lacks gives an empty map.
func SumBy[K comparable](f Families, name string, key func(*dto.Metric) K) map[K]float64 {
	out := map[K]float64{}
	for _, m := range f[name].GetMetric() {
		if c := m.GetCounter(); c != nil {
			out[key(m)] += c.GetValue()
		}
	}
	return out
}

// Shard names one shard of a shardd listener: the labels shardd puts on
// every per-shard series.
type Shard struct {
	Listener string `json:"listener"`
	Proto    string `json:"proto"`
	Shard    string `json:"shard"`
}

// ShardOf is the shard a per-shard series belongs to (a key for SumBy).
func ShardOf(m *dto.Metric) Shard {
	return Shard{Listener: Label(m, "listener"), Proto: Label(m, "proto"), Shard: Label(m, "shard")}
}
