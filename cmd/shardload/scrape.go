package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/shardd/shardd/cmd/internal/promscrape"
)

// shardKey names one shard of a shardd server.
type shardKey = promscrape.Shard

// serverStats is what one scrape of shardd's /metrics says of its shards.
type serverStats struct {
	rx    map[shardKey]float64
	drops map[shardKey]float64
}

func scrapeServer(url string) (serverStats, error) {
	fams, err := promscrape.Get(url, promscrape.Timeout)
	if err != nil {
		return serverStats{}, err
	}
	return statsOf(fams)
}

// parseServerStats reads the per-shard receive and kernel-drop counters from
// a Prometheus text exposition.
func parseServerStats(r io.Reader) (serverStats, error) {
	fams, err := promscrape.Parse(r)
	if err != nil {
		return serverStats{}, err
	}
	return statsOf(fams)
}

func statsOf(fams promscrape.Families) (serverStats, error) {
	s := serverStats{
		rx:    promscrape.SumBy(fams, "shardd_rx_packets_total", promscrape.ShardOf),
		drops: promscrape.SumBy(fams, "shardd_kernel_drops_total", promscrape.ShardOf),
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
