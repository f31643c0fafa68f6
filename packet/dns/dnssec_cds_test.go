package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// TestDNSSECSyncRecords: the CDS and CDNSKEY records a signed zone
// publishes for its parent (RFC 7344; example.com's, for its KSK) are
// answered by type, with their RRSIGs (one per signing key) when the query
// has the DO bit and without them when it does not, and the apex NSEC
// lists both types.
func TestDNSSECSyncRecords(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	for _, qtype := range []uint16{mdns.TypeCDS, mdns.TypeCDNSKEY} {
		name := mdns.TypeToString[qtype]
		m, _, _ := askDO(t, h, "example.com.", qtype, 1232)
		if got := answerTypes(m); got != name+" RRSIG RRSIG" || m.Rcode != mdns.RcodeSuccess || !m.Authoritative {
			t.Errorf("%s with DO: rcode %d AA %v, answer %q; want %s and its 2 RRSIGs", name, m.Rcode, m.Authoritative, got, name)
		}
		for _, rr := range m.Answer {
			if s, ok := rr.(*mdns.RRSIG); ok && s.TypeCovered != qtype {
				t.Errorf("%s with DO: %s", name, rr)
			}
		}
		raw, _ := newQuery("example.com.", qtype).Pack()
		plain := new(mdns.Msg)
		if err := plain.Unpack(exchange(t, h, raw, packet.UDP)); err != nil {
			t.Fatal(err)
		}
		if got := answerTypes(plain); got != name {
			t.Errorf("%s without DO: answer %q; want the %s record alone", name, got, name)
		}
	}
	m, _, _ := askDO(t, h, "example.com.", mdns.TypeNSEC, 1232)
	if len(m.Answer) == 0 || !strings.Contains(m.Answer[0].String(), "DNSKEY CDS CDNSKEY") {
		t.Errorf("apex NSEC: %v; want CDS and CDNSKEY in its type bitmap", m.Answer)
	}
}

// answerTypes lists the types of m's answer records.
func answerTypes(m *mdns.Msg) string {
	var types []string
	for _, rr := range m.Answer {
		types = append(types, mdns.TypeToString[rr.Header().Rrtype])
	}
	return strings.Join(types, " ")
}
