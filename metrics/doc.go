// Package metrics holds the per-shard counters the hot path writes and their
// Prometheus exposition.
//
// A shard increments only its own [Shard] block, which is padded so that two
// shards never share a cache line, and publishes it with plain atomic stores
// once per batch. Nothing is aggregated on the hot path: a [Collector] reads
// every block from a [Source] at scrape time and derives totals, the batch
// fill histogram and the imbalance gauge there. One table (countsTable in
// shard.go) lists the fields of [Counts]: their order is the layout of a
// Shard block, and each row names the series its field becomes, so a new
// counter is a field, a row and, if it is a series, a desc.
//
// A [Server] serves [Handler] within [Limits]: timeouts for every phase of a
// request, a header size limit, GET and HEAD only, and a small cap on
// connections at which idle and request-less connections are evicted, so
// that clients of the endpoint cannot take the process's descriptors or
// memory. Besides /metrics, [Handler] serves a live status page at / and
// /status: one self-contained document (inline style and script, admitted by
// their CSP hashes) that reads /status.json, the registry's shardd_* series
// as JSON, every 2 s.
package metrics
