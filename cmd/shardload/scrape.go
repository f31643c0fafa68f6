package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// shardKey names one shard of a shardd server.
type shardKey struct {
	Listener string `json:"listener"`
	Proto    string `json:"proto"`
	Shard    string `json:"shard"`
}

// serverStats is what one scrape of shardd's /metrics says of its shards.
type serverStats struct {
	rx    map[shardKey]float64
	drops map[shardKey]float64
}

var scrapeClient = &http.Client{Timeout: 5 * time.Second}

func scrapeServer(url string) (serverStats, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return serverStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverStats{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseServerStats(resp.Body)
}

// parseServerStats reads the per-shard receive and kernel-drop counters from
// a Prometheus text exposition.
func parseServerStats(r io.Reader) (serverStats, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return serverStats{}, fmt.Errorf("parsing metrics: %w", err)
	}
	s := serverStats{rx: map[shardKey]float64{}, drops: map[shardKey]float64{}}
	for name, dst := range map[string]map[shardKey]float64{"shardd_rx_packets_total": s.rx, "shardd_kernel_drops_total": s.drops} {
		fam, ok := fams[name]
		if !ok {
			continue
		}
		for _, m := range fam.GetMetric() {
			var k shardKey
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "listener":
					k.Listener = l.GetValue()
				case "proto":
					k.Proto = l.GetValue()
				case "shard":
					k.Shard = l.GetValue()
				}
			}
			if c := m.GetCounter(); c != nil {
				dst[k] = c.GetValue()
			}
		}
	}
	if len(s.rx) == 0 {
		return s, fmt.Errorf("no shardd_rx_packets_total series: is this a shardd /metrics URL?")
	}
	return s, nil
}

// shardDelta is one shard's share of a run.
type shardDelta struct {
	shardKey
	Received    uint64 `json:"received"`
	KernelDrops uint64 `json:"kernel_drops"`
}

// serverDelta is the change between two scrapes, limited to the shards that
// saw traffic of this run (other listeners of the same server are left out).
type serverDelta struct {
	Shards      []shardDelta `json:"shards"`
	Received    uint64       `json:"received"`
	KernelDrops uint64       `json:"kernel_drops"`
	Imbalance   float64      `json:"imbalance"` // busiest shard over the mean of the listener's shards
}

func diffServer(before, after serverStats) serverDelta {
	var d serverDelta
	active := map[string]bool{}
	for k, v := range after.rx {
		if v-before.rx[k] > 0 || after.drops[k]-before.drops[k] > 0 {
			active[k.Listener+"/"+k.Proto] = true
		}
	}
	for k, v := range after.rx {
		if !active[k.Listener+"/"+k.Proto] {
			continue
		}
		sd := shardDelta{shardKey: k, Received: uint64(v - before.rx[k]), KernelDrops: uint64(after.drops[k] - before.drops[k])}
		d.Shards = append(d.Shards, sd)
		d.Received += sd.Received
		d.KernelDrops += sd.KernelDrops
	}
	sort.Slice(d.Shards, func(i, j int) bool {
		a, b := d.Shards[i], d.Shards[j]
		if a.Listener != b.Listener {
			return a.Listener < b.Listener
		}
		if len(a.Shard) != len(b.Shard) {
			return len(a.Shard) < len(b.Shard)
		}
		return a.Shard < b.Shard
	})
	if n := len(d.Shards); n > 0 && d.Received > 0 {
		var top uint64
		for _, s := range d.Shards {
			top = max(top, s.Received)
		}
		d.Imbalance = float64(top) / (float64(d.Received) / float64(n))
	}
	return d
}
