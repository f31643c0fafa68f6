package main

import (
	"fmt"
	"io"
	"time"
)

// summary is the result of a run; its JSON form is the --json output.
type summary struct {
	Target      string      `json:"target"`
	Proto       string      `json:"proto"`
	Mode        string      `json:"mode"`
	Flows       int         `json:"flows"`
	Senders     int         `json:"senders"`
	Size        int         `json:"size"`
	Payload     string      `json:"payload"` // how replies are matched: filler, dns-id, fifo
	GSO         bool        `json:"gso"`
	RateTarget  float64     `json:"rate_target"`
	DurationSec float64     `json:"duration_s"`
	Sent        uint64      `json:"sent"`
	Received    *uint64     `json:"received"` // replies (echo) or the server's count (oneway with --metrics); null if unknown
	Lost        *uint64     `json:"lost"`
	LossPct     *float64    `json:"loss_pct"`
	SentPerSec  float64     `json:"sent_per_s"`
	RecvPerSec  *float64    `json:"received_per_s"`
	SendErrors  uint64      `json:"send_errors"`
	Unexpected  uint64      `json:"unexpected_replies"`
	RTT         *rttSummary `json:"rtt_ns"`
	// ReplyBuffers is the receive buffers the replies came in, when the
	// echo receivers had UDP_GRO on: fewer than the replies when the
	// kernel coalesced them (a server's GSO replies); null without GRO.
	ReplyBuffers *uint64      `json:"reply_buffers"`
	Server       *serverDelta `json:"server"`
}

type rttSummary struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

func newSummary(cfg *config, r *run, elapsed time.Duration) *summary {
	s := &summary{
		Target: cfg.target.String(), Proto: cfg.proto, Mode: cfg.mode, Flows: cfg.flows, Senders: cfg.senders,
		Size: len(cfg.payload), Payload: cfg.kind.String(), GSO: cfg.gso, RateTarget: cfg.rate, DurationSec: elapsed.Seconds(),
	}
	sent, recv := r.totals()
	s.Sent = sent
	s.SentPerSec = float64(sent) / elapsed.Seconds()
	for _, f := range r.flows {
		s.SendErrors += f.sendErrs.Load()
		s.Unexpected += f.unexpected.Load()
	}
	if cfg.mode == "echo" {
		s.setReceived(recv)
	}
	return s
}

// setReceived fills received, lost and their rates. Lost is what was sent
// and never counted: sent == received + lost, always.
func (s *summary) setReceived(recv uint64) {
	recv = min(recv, s.Sent)
	lost := s.Sent - recv
	pct := 0.0
	if s.Sent > 0 {
		pct = 100 * float64(lost) / float64(s.Sent)
	}
	rate := float64(recv) / s.DurationSec
	s.Received, s.Lost, s.LossPct, s.RecvPerSec = &recv, &lost, &pct, &rate
}

func (s *summary) addRTT(r *run) {
	if s.Mode != "echo" {
		return
	}
	var h histogram
	for _, f := range r.flows {
		h.merge(&f.hist)
	}
	if h.total == 0 {
		return
	}
	s.RTT = &rttSummary{
		P50: int64(h.quantile(0.50)), P90: int64(h.quantile(0.90)), P99: int64(h.quantile(0.99)),
		P999: int64(h.quantile(0.999)), Max: int64(h.max),
	}
}

// addGRO counts the buffers the replies came in, if the receivers used
// UDP_GRO. After the receivers are done.
func (s *summary) addGRO(r *run) {
	var bufs uint64
	gro := false
	for _, f := range r.flows {
		if f.gro {
			gro = true
			bufs += uint64(f.io.GROBuffers())
		}
	}
	if gro {
		s.ReplyBuffers = &bufs
	}
}

func (s *summary) print(w io.Writer) {
	gso := "off"
	if s.GSO {
		gso = "on"
	}
	fmt.Fprintf(w, "shardload: %s %s to %s, %d flows, %d senders, %d-byte datagrams (%s), GSO %s, %.1fs\n",
		s.Proto, s.Mode, s.Target, s.Flows, s.Senders, s.Size, s.Payload, gso, s.DurationSec)
	fmt.Fprintf(w, "sent        %d (%.0f/s)\n", s.Sent, s.SentPerSec)
	if s.Received != nil {
		fmt.Fprintf(w, "received    %d (%.0f/s)\n", *s.Received, *s.RecvPerSec)
		fmt.Fprintf(w, "lost        %d (%.3f%%)\n", *s.Lost, *s.LossPct)
		if s.Server != nil && *s.Lost > 0 && s.Server.KernelDrops > 0 {
			// Most often the reason: say so, so a first run does not
			// look like a broken server.
			fmt.Fprintf(w, "            %d of them dropped by the server's kernel: its receive queues were full, the server was slower than this load (--rate sets one)\n",
				min(s.Server.KernelDrops, *s.Lost))
		}
	} else {
		fmt.Fprintf(w, "received    unknown in one-way mode without --metrics\n")
	}
	if s.SendErrors > 0 || s.Unexpected > 0 {
		fmt.Fprintf(w, "errors      %d failed sends, %d unexpected replies\n", s.SendErrors, s.Unexpected)
	}
	if s.ReplyBuffers != nil {
		fmt.Fprintf(w, "gro         replies arrived in %d receive buffers\n", *s.ReplyBuffers)
	}
	if s.RTT != nil {
		d := func(ns int64) time.Duration { return time.Duration(ns).Round(time.Microsecond / 10) }
		fmt.Fprintf(w, "rtt         p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", d(s.RTT.P50), d(s.RTT.P90), d(s.RTT.P99), d(s.RTT.P999), d(s.RTT.Max))
	}
	if s.Server != nil {
		fmt.Fprintf(w, "server      received %d, kernel drops %d, imbalance %.2f (max/mean)\n", s.Server.Received, s.Server.KernelDrops, s.Server.Imbalance)
		for _, sh := range s.Server.Shards {
			fmt.Fprintf(w, "  %s %s shard %s: received %d, kernel drops %d\n", sh.Listener, sh.Proto, sh.Shard, sh.Received, sh.KernelDrops)
		}
	}
}
