package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// wireCheck checks a reply byte by byte, as a strict resolver reads it:
// the records are exactly as many as the header counts and end where the
// message ends; every compression pointer (owners and the names of NS,
// CNAME, PTR, MX, SOA, DNAME rdata) points backwards, at the start of a
// label of a name already read; at most one OPT, in the additional
// section. It returns the owners and types of the records per section,
// and the question names after them.
func wireCheck(out []byte) ([4][]string, error) {
	var secs [4][]string
	if len(out) < headerLen {
		return secs, fmt.Errorf("reply of %d bytes", len(out))
	}
	w := wireWalker{b: out, labels: map[int]bool{}}
	counts := [4]int{}
	for i := range counts {
		counts[i] = int(out[4+2*i])<<8 | int(out[5+2*i])
	}
	off := headerLen
	for range counts[0] {
		q, next, err := w.name(off)
		if err != nil {
			return secs, fmt.Errorf("question: %v", err)
		}
		secs[3] = append(secs[3], q)
		off = next
		off += 4
	}
	opts := 0
	for sec := range 3 {
		for i := range counts[1+sec] {
			owner, rtype, next, err := w.record(off)
			if err != nil {
				return secs, fmt.Errorf("section %d record %d at %d: %v", sec, i, off, err)
			}
			if rtype == mdns.TypeOPT {
				if sec != 2 {
					return secs, fmt.Errorf("OPT in section %d", sec)
				}
				opts++
			}
			secs[sec] = append(secs[sec], owner+" "+mdns.TypeToString[rtype])
			off = next
		}
	}
	if off != len(out) {
		return secs, fmt.Errorf("%d bytes after the last counted record (counts %v)", len(out)-off, counts)
	}
	if opts > 1 {
		return secs, fmt.Errorf("%d OPT records", opts)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		return secs, fmt.Errorf("miekg/dns: %v", err)
	}
	if len(m.Answer) != counts[1] || len(m.Ns) != counts[2] || len(m.Extra) != counts[3] {
		return secs, fmt.Errorf("miekg/dns reads %d/%d/%d records, header says %v", len(m.Answer), len(m.Ns), len(m.Extra), counts)
	}
	return secs, nil
}

type wireWalker struct {
	b      []byte
	labels map[int]bool // where the labels (and pointers) of the names read so far start
}

// name reads the name at off: it returns the name (lower case), where it
// ends in place, and an error for a pointer that is not backwards or does
// not reach a label already read.
func (w *wireWalker) name(off int) (string, int, error) {
	var sb strings.Builder
	end, wire := -1, 0
	var starts []int
	for hops := 0; ; hops++ {
		if off >= len(w.b) || hops > 255 {
			return "", 0, fmt.Errorf("name runs off the message at %d", off)
		}
		l := int(w.b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			for _, s := range starts {
				w.labels[s] = true
			}
			if wire+1 > 255 {
				return "", 0, fmt.Errorf("name of %d bytes", wire+1)
			}
			return strings.ToLower(sb.String()) + ".", end, nil
		case l&0xC0 == 0xC0:
			if off+1 >= len(w.b) {
				return "", 0, fmt.Errorf("pointer cut at %d", off)
			}
			p := int(w.b[off]&0x3F)<<8 | int(w.b[off+1])
			if p >= off || !w.labels[p] {
				return "", 0, fmt.Errorf("pointer at %d to %d: not a label read before", off, p)
			}
			if end < 0 {
				end = off + 2
				starts = append(starts, off) // a pointer may point at a pointer (Knot's owners do)
			}
			off = p
		case l&0xC0 != 0:
			return "", 0, fmt.Errorf("label type %#x at %d", l, off)
		default:
			if off+1+l > len(w.b) {
				return "", 0, fmt.Errorf("label runs off the message at %d", off)
			}
			if end < 0 {
				starts = append(starts, off)
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(fmt.Sprintf("%q", w.b[off+1:off+1+l]))
			wire += 1 + l
			off += 1 + l
		}
	}
}

// record reads the record at off: owner, type and where it ends.
func (w *wireWalker) record(off int) (string, uint16, int, error) {
	owner, off, err := w.name(off)
	if err != nil {
		return "", 0, 0, err
	}
	if off+10 > len(w.b) {
		return "", 0, 0, fmt.Errorf("header cut")
	}
	rtype := uint16(w.b[off])<<8 | uint16(w.b[off+1])
	rdlen := int(w.b[off+8])<<8 | int(w.b[off+9])
	rd, end := off+10, off+10+rdlen
	if end > len(w.b) {
		return "", 0, 0, fmt.Errorf("rdata of %d bytes cut", rdlen)
	}
	var names []int // rdata offsets of names, -1: after the previous
	switch rtype {
	case mdns.TypeNS, mdns.TypeCNAME, mdns.TypePTR, mdns.TypeDNAME:
		names = []int{0}
	case mdns.TypeMX:
		names = []int{2}
	case mdns.TypeSOA:
		names = []int{0, -1}
	}
	at := rd
	for _, n := range names {
		if n >= 0 {
			at = rd + n
		}
		if at, err = w.nameIn(at, end); err != nil {
			return "", 0, 0, fmt.Errorf("rdata: %v", err)
		}
	}
	return owner, rtype, end, nil
}

func (w *wireWalker) nameIn(at, end int) (int, error) {
	_, next, err := w.name(at)
	if err == nil && next > end {
		err = fmt.Errorf("name runs past its rdata")
	}
	return next, err
}

// FuzzServePacketWire: every reply, over UDP and TCP, passes wireCheck,
// and the UDP reply's answer and authority are the TCP reply's (a prefix
// of them when TC is set); additional records too when TC is set.
func FuzzServePacketWire(f *testing.F) {
	for _, b := range wireSeeds(f) {
		f.Add(b)
	}
	fuzzWire(f, newTestServer(f))
}

// FuzzServePacketWireDNSSEC: FuzzServePacketWire on the signed zones.
func FuzzServePacketWireDNSSEC(f *testing.F) {
	for _, b := range wireSeeds(f) {
		f.Add(b)
	}
	for _, b := range doQueries(f) {
		f.Add(b)
	}
	fuzzWire(f, newSignedServer(f))
}

// wireSeeds are queries for the names of both test zones, at payload sizes
// that cut replies in various places, and odd names (longest, most labels,
// binary and mixed-case labels).
func wireSeeds(f *testing.F) [][]byte {
	long := strings.Repeat("a.", 126) + "example.com." // 127 labels... within 255 bytes
	if len(long) > 254 {
		long = long[len(long)-254:]
		long = long[strings.IndexByte(long, '.')+1:]
	}
	names := []string{"www.example.com.", "x.apps.example.com.", "huge.example.com.", "big.example.com.", "nope.example.com.",
		"nx.edge.test.", "x.big.edge.test.", "q.alias.example.com.", "X.Y.APPS.Edge.Test.", "a1b2.apps.example.com.",
		"\\000\\255\\.\\192.apps.example.com.", long, strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".apps.edge.test."}
	var out [][]byte
	for _, n := range names {
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeMX, mdns.TypeTXT, mdns.TypeNS, mdns.TypeAAAA} {
			for _, size := range []uint16{0, 512, 700, 1232} {
				q := newQuery(n, qt)
				if size > 0 {
					q.SetEdns0(size, true)
				}
				b, err := q.Pack()
				if err != nil {
					continue
				}
				out = append(out, b)
			}
		}
	}
	if len(out) < 100 {
		f.Fatalf("only %d seeds packed", len(out))
	}
	return out
}

func fuzzWire(f *testing.F, s *Server) {
	h := s.NewHandler(0)
	qs := [2]*packet.ReplyQueue{packet.NewReplyQueue(4, 4*65536, 65507), packet.NewReplyQueue(4, 4*65536, 65535)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var replies [2][]byte
		for i, proto := range []packet.Proto{packet.UDP, packet.TCP} {
			q := qs[i]
			q.Reset()
			p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort("192.0.2.1:53"), Proto: proto}
			if err := h.ServePacket(q.Begin(p), p); err != nil {
				t.Fatalf("ServePacket: %v", err)
			}
			if len(q.Replies()) == 1 {
				replies[i] = q.Replies()[0].Data
			}
		}
		var secs [2][4][]string
		for i, out := range replies {
			if out == nil {
				continue
			}
			var err error
			if secs[i], err = wireCheck(out); err != nil {
				t.Fatalf("proto %d: %v\nquery % x\nreply % x", i, err, raw, out)
			}
		}
		// A standard query whose one additional record is an OPT.
		if qm := new(mdns.Msg); qm.Unpack(raw) == nil && !qm.Response && qm.Opcode == mdns.OpcodeQuery && raw[10] == 0 && raw[11] == 1 &&
			qm.IsEdns0() != nil && qm.IsEdns0().Version() == 0 && len(qm.Extra) == 1 {
			for i, out := range replies {
				if out != nil && out[3]&0xF != mdns.RcodeFormatError && !slices.Contains(secs[i][2], ". OPT") {
					t.Fatalf("proto %d: no OPT in the reply to an EDNS query\nquery % x\nreply % x", i, raw, out)
				}
			}
		}
		for i, out := range replies { // an answer starts at the query name
			if out != nil && len(secs[i][0]) > 0 && len(secs[i][3]) > 0 && !strings.HasPrefix(secs[i][0][0], secs[i][3][0]+" ") {
				t.Fatalf("proto %d: the answer starts at %s, the question is %s\nquery % x\nreply % x", i, secs[i][0][0], secs[i][3][0], raw, out)
			}
		}
		u, tc := replies[0], replies[1]
		if u == nil || tc == nil || u[3]&0xF != tc[3]&0xF || tc[2]&0x02 != 0 {
			return // not both answered alike (AXFR, refused over UDP, ...)
		}
		truncated := u[2]&0x02 != 0
		for sec := range 3 {
			us, ts := withoutOPT(secs[0][sec]), withoutOPT(secs[1][sec])
			if sec == 2 && !truncated { // helpful extras may be left out
				ts = ts[:min(len(us), len(ts))]
			}
			if len(us) > len(ts) || (!truncated && len(us) != len(ts)) || strings.Join(us, "\n") != strings.Join(ts[:len(us)], "\n") {
				t.Fatalf("section %d over UDP (TC %v):\n%s\nover TCP:\n%s\nquery % x", sec, truncated, strings.Join(us, "\n"), strings.Join(ts, "\n"), raw)
			}
		}
	})
}

func withoutOPT(rrs []string) []string {
	out := rrs[:0:0]
	for _, r := range rrs {
		if !strings.HasSuffix(r, " OPT") {
			out = append(out, r)
		}
	}
	return out
}
