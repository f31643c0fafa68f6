package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	shardLabels    = []string{"listener", "proto", "shard"}
	listenerLabels = []string{"listener", "proto"}

	descRxPackets      = prometheus.NewDesc("shardd_rx_packets_total", "Datagrams received by the shard, truncated ones included.", shardLabels, nil)
	descRxBytes        = prometheus.NewDesc("shardd_rx_bytes_total", "Bytes received by the shard (full datagram length, truncated ones included).", shardLabels, nil)
	descTxPackets      = prometheus.NewDesc("shardd_tx_packets_total", "Replies sent by the shard. UDP: counted as the batch is handed to the kernel, so replies it refuses are included (and also in shardd_send_errors_total). TCP: replies the kernel has taken in full.", shardLabels, nil)
	descTxBytes        = prometheus.NewDesc("shardd_tx_bytes_total", "Reply bytes sent by the shard, counted as shardd_tx_packets_total is (UDP: including refused sends; TCP: what the kernel has taken).", shardLabels, nil)
	descTruncated      = prometheus.NewDesc("shardd_truncated_total", "Datagrams longer than --max-packet: counted and not handled.", shardLabels, nil)
	descHandlerErrors  = prometheus.NewDesc("shardd_handler_errors_total", "Datagrams whose handler returned an error or panicked.", shardLabels, nil)
	descSendErrors     = prometheus.NewDesc("shardd_send_errors_total", "Replies the kernel refused to send (UDP; they are also in shardd_tx_packets_total).", shardLabels, nil)
	descRxErrors       = prometheus.NewDesc("shardd_rx_errors_total", "Receive calls that failed.", shardLabels, nil)
	descKernelDrops    = prometheus.NewDesc("shardd_kernel_drops_total", "Datagrams the kernel dropped at the shard's socket (receive buffer full), from SO_MEMINFO.", shardLabels, nil)
	descXDPRxDropped   = prometheus.NewDesc("shardd_xdp_rx_dropped_total", "Frames the kernel dropped at the shard's AF_XDP socket for want of room (XDP_STATISTICS rx_dropped).", shardLabels, nil)
	descXDPRxInvalid   = prometheus.NewDesc("shardd_xdp_rx_invalid_total", "Invalid receive descriptors at the shard's AF_XDP socket (XDP_STATISTICS rx_invalid_descs).", shardLabels, nil)
	descXDPRxRingFull  = prometheus.NewDesc("shardd_xdp_rx_ring_full_total", "Frames dropped because the AF_XDP socket's receive ring was full (XDP_STATISTICS rx_ring_full).", shardLabels, nil)
	descXDPFillEmpty   = prometheus.NewDesc("shardd_xdp_fill_ring_empty_total", "Times the AF_XDP socket's fill ring had no frame to receive into (XDP_STATISTICS rx_fill_ring_empty_descs).", shardLabels, nil)
	descXDPTxInvalid   = prometheus.NewDesc("shardd_xdp_tx_invalid_total", "Invalid transmit descriptors at the shard's AF_XDP socket (XDP_STATISTICS tx_invalid_descs).", shardLabels, nil)
	descXDPTxRingEmpty = prometheus.NewDesc("shardd_xdp_tx_ring_empty_total", "Sends that found the AF_XDP socket's transmit ring empty, normally once per kick (XDP_STATISTICS tx_ring_empty_descs).", shardLabels, nil)
	descQueueBytes     = prometheus.NewDesc("shardd_rx_queue_bytes", "Bytes waiting in the shard socket's receive queue.", shardLabels, nil)
	descRcvBuf         = prometheus.NewDesc("shardd_rcvbuf_bytes", "Effective receive buffer of the shard's socket as the kernel reports it.", shardLabels, nil)
	descBatchSize      = prometheus.NewDesc("shardd_rx_batch_size", "Buffers returned per receive call (batch fill, up to --batch); without GRO each buffer is one datagram.", shardLabels, nil)
	descGROSegments    = prometheus.NewDesc("shardd_rx_gro_segments", "Datagrams per received buffer on a shard with UDP GRO on (--gro; with it off nothing is observed): 1, or more where GRO coalesced a flow's datagrams.", shardLabels, nil)
	descTxGSO          = prometheus.NewDesc("shardd_tx_gso_segments", "Replies per GSO send (UDP_SEGMENT: equal-size replies to one destination, cut into datagrams by the kernel), counted as the send is handed to the kernel (a send it refuses, whose replies then go one by one, included); _sum is the replies they carried, also in shardd_tx_packets_total.", shardLabels, nil)
	descTCPAccepted    = prometheus.NewDesc("shardd_tcp_accepted_total", "TCP connections accepted by the shard.", shardLabels, nil)
	descTCPActive      = prometheus.NewDesc("shardd_tcp_active", "TCP connections open on the shard.", shardLabels, nil)
	descTCPClosed      = prometheus.NewDesc("shardd_tcp_closed_total", "TCP connections closed by the shard, by reason.", append(append([]string{}, shardLabels...), "reason"), nil)
	descTCPDiscarded   = prometheus.NewDesc("shardd_tcp_discarded_bytes_total", "Bytes read from TCP clients that were not a complete message when the connection closed.", shardLabels, nil)
	descTCPUnsent      = prometheus.NewDesc("shardd_tcp_unsent_replies_total", "TCP replies queued for a connection that closed before the kernel took them (not in shardd_tx_packets_total).", shardLabels, nil)
	descTCPUnsentB     = prometheus.NewDesc("shardd_tcp_unsent_bytes_total", "Bytes of the replies in shardd_tcp_unsent_replies_total.", shardLabels, nil)
	descTCPEmpty       = prometheus.NewDesc("shardd_tcp_empty_frames_total", "TCP frames that carried no message (zero length): consumed, not handled, not in shardd_rx_packets_total; they do not extend the idle timeout.", shardLabels, nil)
	descTCPAcceptErrs  = prometheus.NewDesc("shardd_tcp_accept_errors_total", "Failed accept calls on the shard's TCP listener, by errno (EMFILE: out of descriptors); accepts back off and retry.", append(append([]string{}, shardLabels...), "errno"), nil)
	descTCPHeld        = prometheus.NewDesc("shardd_tcp_held_bytes", "Buffer bytes the shard's TCP connections hold (input not yet served, replies not yet written), bounded by --max-shard-memory.", shardLabels, nil)
	descTLSHandshakes  = prometheus.NewDesc("shardd_tls_handshakes_total", "TLS handshakes on the shard's TLS listener, by result: ok, timeout (--tls-handshake-timeout), bad_certificate, protocol (no common version, suite or ALPN, or not TLS), eof, shutdown, error.", append(append([]string{}, shardLabels...), "result"), nil)
	descTLSResumed     = prometheus.NewDesc("shardd_tls_resumed_total", "TLS handshakes that resumed a session (a ticket): no full handshake; also in shardd_tls_handshakes_total{result=\"ok\"}.", shardLabels, nil)
	descTLSVersions    = prometheus.NewDesc("shardd_tls_connections_total", "TLS connections established on the shard, by protocol version (1.2, 1.3).", append(append([]string{}, shardLabels...), "version"), nil)
	descTLSCiphers     = prometheus.NewDesc("shardd_tls_cipher_connections_total", "TLS connections established on the shard, by cipher suite (IANA name; the suites shardd offers, or other).", append(append([]string{}, shardLabels...), "cipher"), nil)
	descSocketInfo     = prometheus.NewDesc("shardd_socket_info", "The shard's socket, by inode (as /proc/net and shardd inspect list it); the value is always 1.", append(append([]string{}, shardLabels...), "inode"), nil)
	descImbalance      = prometheus.NewDesc("shardd_shard_imbalance", "Received datagrams of the busiest shard over the mean of the listener's shards (1 = even).", listenerLabels, nil)

	descHostInErrors     = prometheus.NewDesc("shardd_host_udp_in_errors_total", "Host-wide UDP InErrors (/proc/net/snmp, snmp6).", []string{"family"}, nil)
	descHostRcvbufErrors = prometheus.NewDesc("shardd_host_udp_rcvbuf_errors_total", "Host-wide UDP RcvbufErrors: datagrams dropped for a full receive buffer.", []string{"family"}, nil)
	descHostSndbufErrors = prometheus.NewDesc("shardd_host_udp_sndbuf_errors_total", "Host-wide UDP SndbufErrors.", []string{"family"}, nil)
	descHostMemErrors    = prometheus.NewDesc("shardd_host_udp_mem_errors_total", "Host-wide UDP MemErrors: drops from the global udp_mem limit.", []string{"family"}, nil)
)

// batchBounds and gsoBounds are the upper bounds of the batch-size and
// GSO-send histogram buckets.
var (
	batchBounds = powersOfTwo(1, BatchBuckets)
	gsoBounds   = powersOfTwo(2, GSOBuckets)
)

// powersOfTwo returns n bounds: first, 2*first, 4*first...
func powersOfTwo(first, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = float64(first << i)
	}
	return b
}

// histogram is a constant histogram of count observations adding up to
// sum, by bucket (counts, over bounds).
func histogram(desc *prometheus.Desc, bounds []float64, counts []uint64, count, sum uint64, lv []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for b, n := range counts {
		cum += n
		buckets[bounds[b]] = cum
	}
	return prometheus.MustNewConstHistogram(desc, count, float64(sum), buckets, lv...)
}

// Collector exposes the snapshots of a Source, read at scrape time, as shardd_* metrics.
type Collector struct {
	src     Source
	hostUDP func() (v4, v6 HostUDP, err error)
}

// NewCollector returns a collector over src. With hostUDP set (normally
// ReadHostUDP) it also exposes the host's UDP error counters.
func NewCollector(src Source, hostUDP func() (v4, v6 HostUDP, err error)) *Collector {
	return &Collector{src: src, hostUDP: hostUDP}
}

// snapSeries is one per-shard series read from a Snapshot rather than from
// its Counts words.
type snapSeries struct {
	desc  *prometheus.Desc
	vt    prometheus.ValueType
	proto string // as in field
	get   func(*Snapshot) uint64
}

var snapTable = []snapSeries{
	{descTCPActive, prometheus.GaugeValue, "tcp", func(s *Snapshot) uint64 { return s.Active() }},
	{descTCPHeld, prometheus.GaugeValue, "tcp", func(s *Snapshot) uint64 { return s.HeldBytes }},
	{descKernelDrops, prometheus.CounterValue, "udp", func(s *Snapshot) uint64 { return s.KernelDrops }},
	{descQueueBytes, prometheus.GaugeValue, "udp", func(s *Snapshot) uint64 { return s.QueueBytes }},
	{descRcvBuf, prometheus.GaugeValue, "udp", func(s *Snapshot) uint64 { return s.RcvBuf }},
	{descXDPRxDropped, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.RxDropped }},
	{descXDPRxInvalid, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.RxInvalid }},
	{descXDPRxRingFull, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.RxRingFull }},
	{descXDPFillEmpty, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.FillRingEmpty }},
	{descXDPTxInvalid, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.TxInvalid }},
	{descXDPTxRingEmpty, prometheus.CounterValue, "xdp", func(s *Snapshot) uint64 { return s.XDP.TxRingEmpty }},
}

// descs is every desc the Collector may send, host-wide ones aside: whether
// a series is there depends on the shards' transports and sockets, which
// change between scrapes, so Describe cannot be left to a Collect.
var descs = func() []*prometheus.Desc {
	d := []*prometheus.Desc{descBatchSize, descGROSegments, descTxGSO, descSocketInfo, descImbalance}
	for _, f := range countsTable {
		if f.desc != nil {
			d = append(d, f.desc)
		}
	}
	for _, g := range snapTable {
		d = append(d, g.desc)
	}
	return d
}()

var hostDescs = []*prometheus.Desc{descHostInErrors, descHostRcvbufErrors, descHostSndbufErrors, descHostMemErrors}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
	if c.hostUDP != nil {
		for _, d := range hostDescs {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector. It may be called concurrently.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snaps := c.src.Stats(nil)
	type key struct{ listener, proto string }
	type agg struct {
		n        int
		sum, max uint64
	}
	groups := map[key]*agg{}
	var order []key
	for i := range snaps {
		s := &snaps[i]
		collectShard(ch, s)
		k := key{s.Listener, s.Proto}
		a := groups[k]
		if a == nil {
			a = &agg{}
			groups[k] = a
			order = append(order, k)
		}
		a.n++
		a.sum += s.RxPackets
		a.max = max(a.max, s.RxPackets)
	}
	for _, k := range order {
		a := groups[k]
		imbalance := 1.0
		if a.sum > 0 {
			imbalance = float64(a.max) / (float64(a.sum) / float64(a.n))
		}
		ch <- prometheus.MustNewConstMetric(descImbalance, prometheus.GaugeValue, imbalance, k.listener, k.proto)
	}
	if c.hostUDP != nil {
		c.collectHost(ch)
	}
}

// collectHost sends the host-wide UDP error counters.
func (c *Collector) collectHost(ch chan<- prometheus.Metric) {
	v4, v6, err := c.hostUDP()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descHostInErrors, err)
		return
	}
	for _, f := range []struct {
		family string
		h      HostUDP
	}{{"ipv4", v4}, {"ipv6", v6}} {
		ch <- prometheus.MustNewConstMetric(descHostInErrors, prometheus.CounterValue, float64(f.h.InErrors), f.family)
		ch <- prometheus.MustNewConstMetric(descHostRcvbufErrors, prometheus.CounterValue, float64(f.h.RcvbufErrors), f.family)
		ch <- prometheus.MustNewConstMetric(descHostSndbufErrors, prometheus.CounterValue, float64(f.h.SndbufErrors), f.family)
		ch <- prometheus.MustNewConstMetric(descHostMemErrors, prometheus.CounterValue, float64(f.h.MemErrors), f.family)
	}
}

// collectShard sends the series of one shard.
func collectShard(ch chan<- prometheus.Metric, s *Snapshot) {
	lv := []string{s.Listener, s.Proto, strconv.Itoa(s.Shard)}
	for i := range countsTable {
		f := &countsTable[i]
		if f.desc == nil || !on(f.proto, s.Proto) {
			continue
		}
		if f.scalar != nil {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(*f.scalar(&s.Counts)), lv...)
			continue
		}
		for j, n := range f.array(&s.Counts) {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(n), append(lv, f.label(j))...)
		}
	}
	for _, g := range snapTable {
		if on(g.proto, s.Proto) {
			ch <- prometheus.MustNewConstMetric(g.desc, g.vt, float64(g.get(s)), lv...)
		}
	}
	if s.Inode != 0 {
		ch <- prometheus.MustNewConstMetric(descSocketInfo, prometheus.GaugeValue, 1, append(lv, strconv.FormatUint(s.Inode, 10))...)
	}
	if on("udp", s.Proto) {
		// Every buffer came in some batch: the batch histogram's sum is the
		// buffers. With GRO on every datagram came in some buffer, each
		// observed: the GRO histogram's count is the buffers, its sum
		// RxPackets; with GRO off it observed nothing.
		groBuffers, groSum := sum(s.GROSegments[:]), uint64(0)
		if groBuffers > 0 {
			groSum = s.RxPackets
		}
		ch <- histogram(descGROSegments, batchBounds, s.GROSegments[:], groBuffers, groSum, lv)
		ch <- histogram(descBatchSize, batchBounds, s.BatchSizes[:], s.Batches, s.RxBuffers, lv)
		// A GSO send is one observation: the count is the buckets' sum.
		ch <- histogram(descTxGSO, gsoBounds, s.TxGSOSends[:], sum(s.TxGSOSends[:]), s.TxGSODatagrams, lv)
	}
}

// sum adds up a histogram's bucket counts.
func sum(counts []uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

// on reports whether a series of the transport proto ("udp", "tcp", "tls",
// "xdp", or "" for every one) is exposed on a shard of the transport
// shardProto: a TLS shard is a TCP shard too, an XDP shard has the XDP
// series only, and any other shard gets the UDP series.
func on(proto, shardProto string) bool {
	stream := shardProto == "tcp" || shardProto == "tls"
	switch proto {
	case "":
		return true
	case "tcp":
		return stream
	case "tls":
		return shardProto == "tls"
	case "xdp":
		return shardProto == "xdp"
	}
	return !stream && shardProto != "xdp"
}
