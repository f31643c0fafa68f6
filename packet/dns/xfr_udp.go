package dns

import (
	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// ixfrOverUDP answers an IXFR over UDP (RFC 1995 2): to a source the
// transfer ACL allows without a key (the shards verify no TSIG), the
// zone's current SOA, which tells the client whether to transfer over TCP
// (--xfr-listen); otherwise the rcode the query had (REFUSED over TCP,
// FORMERR and the like).
func (h *Handler) ixfrOverUDP(q *query, pkt *packet.Packet, rcode int) (*template, int) {
	p := h.srv.primary
	if rcode != mdns.RcodeRefused || pkt.Proto != packet.UDP || p == nil || q.qclass != mdns.ClassINET || !p.allowed(pkt.Src.Addr(), "") {
		return nil, rcode
	}
	z := h.srv.zones.Load().byOrigin[string(h.name[:q.nameLen])]
	if z == nil {
		return nil, mdns.RcodeNotAuth // not a zone served here (RFC 5936 2.2.1)
	}
	apex := z.byWire[string(h.name[:q.nameLen])].forDO(q.do) // with DO, the SOA and its RRSIG
	if t := apex.exact[mdns.TypeSOA]; t != nil {
		return t, t.rcode
	}
	return apex.exactDefault, apex.exactDefault.rcode
}
