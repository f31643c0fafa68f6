// Package metrics holds the per-shard counters the hot path writes and their
// Prometheus exposition.
//
// A shard increments only its own [Shard] block, which is padded so that two
// shards never share a cache line, and publishes it with plain atomic stores
// once per batch. Nothing is aggregated on the hot path: a [Collector] reads
// every block from a [Source] at scrape time and derives totals, the batch
// fill histogram and the imbalance gauge there.
package metrics
