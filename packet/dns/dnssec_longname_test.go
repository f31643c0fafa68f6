package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// rawDOQuery is a query for the wire-format name w, type A, with an OPT of
// payload size size and the DO bit: built by hand, so names with bytes 0
// and 1 in their labels go through as they are.
func rawDOQuery(w []byte, size uint16) []byte {
	b := []byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}
	b = append(b, w...)
	b = append(b, 0, byte(mdns.TypeA), 0, byte(mdns.ClassINET))
	return append(b, 0, 0, byte(mdns.TypeOPT), byte(size>>8), byte(size), 0, 0, 0x80, 0, 0, 0)
}

// longName is the wire form of a 255-byte name below origin: one-byte
// labels (0x00, 0x01 in turn) for the most labels (the canonical key's
// escapes), or 63-byte labels of 0x00 for the longest escaped key.
func longName(origin string, wide bool) []byte {
	o := mustWire(origin)
	var w []byte
	room := 255 - len(o)
	for i := 0; room > 0; i++ {
		l := 1
		if wide {
			l = min(63, room-1)
		}
		if room-(l+1) == 1 { // a last room of 1 byte cannot hold a label
			l--
		}
		c := byte(i & 1)
		if wide {
			c = 0
		}
		w = append(w, byte(l))
		for j := 0; j < l; j++ {
			w = append(w, c)
		}
		room -= l + 1
	}
	return append(w, o...)
}

// TestServePacketDNSSECLongNames: names of 255 bytes (up to 127 labels,
// bytes that the canonical order escapes) that do not exist in an NSEC
// and an NSEC3 zone get NXDOMAIN with their query-time proof, over 512 and
// 1232-byte payloads, and the hot path allocates nothing for them.
func TestServePacketDNSSECLongNames(t *testing.T) {
	h := newSignedServer(t).NewHandler(0)
	var qs [][]byte
	for _, origin := range []string{"example.com.", "edge.test."} {
		for _, wide := range []bool{false, true} {
			w := longName(origin, wide)
			if len(w) != 255 {
				t.Fatalf("%s: a name of %d bytes", origin, len(w))
			}
			for _, size := range []uint16{512, 1232} {
				qs = append(qs, rawDOQuery(w, size))
			}
		}
	}
	rq := assertNoAllocs(t, h, qs, "192.0.2.1:53")
	for i, r := range rq.Replies() {
		m := new(mdns.Msg)
		if err := m.Unpack(r.Data); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		proof := false // a record that covers the name (NSEC) or its next closer name (NSEC3)
		name := m.Question[0].Name
		for _, rr := range m.Ns {
			switch rr := rr.(type) {
			case *mdns.NSEC:
				k := canonicalKey(name)
				proof = proof || string(canonicalKey(canonical(rr.Hdr.Name))) < string(k) &&
					(string(k) < string(canonicalKey(canonical(rr.NextDomain))) || rr.NextDomain == "example.com.")
			case *mdns.NSEC3:
				proof = proof || rr.Cover(nextCloser(name, "edge.test."))
			}
		}
		if m.Rcode != mdns.RcodeNameError || len(r.Data) > 1232 || (!m.Truncated && !proof) {
			t.Errorf("reply %d (%s): %s, %d bytes, TC %v, authority %s", i, strings.TrimSpace(m.Question[0].Name[:20]), mdns.RcodeToString[m.Rcode], len(r.Data), m.Truncated, m.Ns)
		}
	}
}
