package dns

import (
	"net/netip"
	"slices"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardd/shardd/packet"
)

// notifyResult labels shardd_dns_notifies_total.
const (
	notifyAccepted  = iota // a check of the zone follows
	notifyCoalesced        // a check was already pending: this one adds nothing
	notifyRefused          // not from one of the zone's primaries
	notifyNotAuth          // the zone's TSIG key did not sign it
	numNotifyResults
)

var notifyResultNames = [numNotifyResults]string{"accepted", "coalesced", "refused", "notauth"}

// rcodeNotify is what parse returns for a NOTIFY to a secondary server:
// not an rcode, the sign to answer it with serveNotify.
const rcodeNotify = -1

// serveNotify answers a NOTIFY (RFC 1996) for a secondary zone: from one of
// the zone's primaries, signed by its key if it has one, it queues a check
// of the zone and gets NOERROR with AA; from anyone else REFUSED, badly
// signed NOTAUTH (RFC 8945 5.2), for a zone not followed here NOTAUTH.
// Ordinary queries never come here; a NOTIFY with TSIG allocates.
func (h *Handler) serveNotify(w *packet.ReplyWriter, p *packet.Packet, q *query, c *tally[uint64]) error {
	z, rcode := h.notifyZone(q, p.Src.Addr())
	var b []byte
	if z != nil && z.key != nil && rcode == mdns.RcodeSuccess {
		b, rcode = signedNotifyReply(w.AvailableBuffer(), p.Data, z, w.MaxReply())
	} else {
		aa := uint16(0)
		if rcode == mdns.RcodeSuccess {
			aa = flagAA
		}
		b, _ = h.build(w.AvailableBuffer(), p.Data, q, rcode, nil, replyLimit(q, p.Proto, w.MaxReply()), aa)
	}
	if z != nil {
		z.notified(rcode)
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	c.responses[rcode]++
	return nil
}

// notifyZone finds the secondary zone a NOTIFY is about and checks where it
// came from, without allocating.
func (h *Handler) notifyZone(q *query, src netip.Addr) (*secondary, int) {
	if q.qend == 0 {
		return nil, mdns.RcodeFormatError
	}
	z := h.srv.sec.byWire[string(h.name[:q.nameLen])]
	if z == nil {
		return nil, mdns.RcodeNotAuth
	}
	src = src.Unmap()
	for _, p := range z.Primaries {
		if p.Addr().Unmap() == src {
			return z, mdns.RcodeSuccess
		}
	}
	return z, mdns.RcodeRefused
}

// notified counts a NOTIFY answered with rcode and, when accepted, queues
// a check of z (without waiting: a check already pending covers it).
func (z *secondary) notified(rcode int) {
	switch rcode {
	case mdns.RcodeSuccess:
		select {
		case z.notify <- struct{}{}:
			z.notifies[notifyAccepted].Add(1)
		default:
			z.notifies[notifyCoalesced].Add(1)
		}
	case mdns.RcodeRefused:
		z.notifies[notifyRefused].Add(1)
	case mdns.RcodeNotAuth:
		z.notifies[notifyNotAuth].Add(1)
	}
}

// signedNotifyReply checks the TSIG of NOTIFY m with z's key and appends
// the reply to b: signed NOERROR when it verifies, else NOTAUTH with an
// unsigned TSIG record naming the error (BADKEY, BADSIG, BADTIME).
func signedNotifyReply(b, m []byte, z *secondary, limit int) ([]byte, int) {
	req := new(mdns.Msg)
	if err := req.Unpack(m); err != nil || len(req.Question) != 1 {
		return b, mdns.RcodeFormatError
	}
	r := new(mdns.Msg)
	r.SetReply(req)
	t := req.IsTsig()
	tsigErr := uint16(mdns.RcodeBadKey)
	if t != nil && canonical(t.Hdr.Name) == z.key.Name && mdns.CanonicalName(t.Algorithm) == z.key.Algorithm {
		// TsigVerify writes to the message (its ARCOUNT): give it a copy.
		err := mdns.TsigVerify(slices.Clone(m), z.key.Secret, "", false)
		if err == nil {
			r.Authoritative = true
			r.SetTsig(z.key.Name, z.key.Algorithm, tsigFudge, time.Now().Unix())
			out, _, err := mdns.TsigGenerate(r, z.key.Secret, t.MAC, false)
			if err != nil || len(out) > limit {
				return b, mdns.RcodeServerFailure
			}
			return append(b, out...), mdns.RcodeSuccess
		}
		tsigErr = tsigErrorCode(err)
	}
	r.Rcode = mdns.RcodeNotAuth
	if t != nil {
		r.Extra = append(r.Extra, tsigErrorRecord(req.Id, t, tsigErr))
	}
	out, err := r.Pack()
	if err != nil || len(out) > limit {
		return b, mdns.RcodeServerFailure
	}
	return append(b, out...), mdns.RcodeNotAuth
}

var (
	descExpired = prometheus.NewDesc("shardd_dns_zone_expired",
		"1 while a secondary zone is past its SOA expire without a successful refresh (it answers SERVFAIL), else 0.",
		[]string{"zone"}, nil)
	descLastRefresh = prometheus.NewDesc("shardd_dns_zone_last_refresh_timestamp_seconds",
		"When a secondary zone was last confirmed current with a primary (Unix time; the copy's time after a restart).",
		[]string{"zone"}, nil)
	descRefreshFailures = prometheus.NewDesc("shardd_dns_zone_refresh_failures_total",
		"Refreshes of a secondary zone that failed at every primary (unreachable, refused, bad TSIG, broken transfer); the copy served stays.",
		[]string{"zone"}, nil)
	descNotifies = prometheus.NewDesc("shardd_dns_notifies_total",
		"NOTIFY messages received for secondary zones, by zone and result (accepted, coalesced into a pending check, refused: not from a primary, notauth: bad TSIG).",
		[]string{"zone", "result"}, nil)
)

func (s *Server) describeSecondaries(ch chan<- *prometheus.Desc) {
	ch <- descExpired
	ch <- descLastRefresh
	ch <- descNotifies
	ch <- descRefreshFailures
}

// collectSecondaries sends the secondary zones' series, if any.
func (s *Server) collectSecondaries(ch chan<- prometheus.Metric) {
	if s.sec == nil {
		return
	}
	for _, z := range s.sec.zones {
		for t := range z.transfers {
			for r := range z.transfers[t] {
				ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.CounterValue, float64(z.transfers[t][r].Load()), z.origin, xfrTypeNames[t], xfrResultNames[r])
			}
		}
		expired := 0.0
		if z.expired.Load() {
			expired = 1
		}
		ch <- prometheus.MustNewConstMetric(descRefreshFailures, prometheus.CounterValue, float64(z.failures.Load()), z.origin)
		ch <- prometheus.MustNewConstMetric(descExpired, prometheus.GaugeValue, expired, z.origin)
		if last := z.lastRefresh.Load(); last != 0 {
			ch <- prometheus.MustNewConstMetric(descLastRefresh, prometheus.GaugeValue, float64(last)/1e9, z.origin)
		}
		for r := range z.notifies {
			ch <- prometheus.MustNewConstMetric(descNotifies, prometheus.CounterValue, float64(z.notifies[r].Load()), z.origin, notifyResultNames[r])
		}
	}
}
