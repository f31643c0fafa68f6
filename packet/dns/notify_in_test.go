package dns

import (
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet"
)

// serveNotifyFrom serves raw from src over UDP and returns the reply.
func serveNotifyFrom(t *testing.T, h *Handler, raw []byte, src string) *mdns.Msg {
	t.Helper()
	q := packet.NewReplyQueue(4, 4*65536, 65507)
	p := &packet.Packet{Data: raw, Src: netip.MustParseAddrPort(src), Proto: packet.UDP}
	if err := h.ServePacket(q.Begin(p), p); err != nil {
		t.Fatal(err)
	}
	if len(q.Replies()) != 1 {
		t.Fatalf("%d replies", len(q.Replies()))
	}
	r := new(mdns.Msg)
	if err := r.Unpack(q.Replies()[0].Data); err != nil {
		t.Fatal(err)
	}
	return r
}

func notifyMsg(t *testing.T, zone string) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetNotify(zone)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotify: a NOTIFY from the zone's primary is answered NOERROR, AA,
// opcode NOTIFY, and queues one check (more coalesce); one from another
// address is REFUSED and one for a zone not followed here NOTAUTH,
// neither queuing anything.
func TestNotify(t *testing.T) {
	s, err := NewServer(testZones)
	if err != nil {
		t.Fatal(err)
	}
	primary := netip.MustParseAddrPort("192.0.2.53:53")
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "sec.test", Primaries: []netip.AddrPort{primary}}}}); err != nil {
		t.Fatal(err)
	}
	z := s.sec.zones[0]
	h := s.NewHandler(0)
	for i, c := range []struct {
		zone, src string
		rcode     int
		pending   int
	}{
		{"sec.test.", "192.0.2.7:5300", mdns.RcodeRefused, 0},
		{"example.com.", "192.0.2.53:53", mdns.RcodeNotAuth, 0},
		{"SEC.test.", "192.0.2.53:1234", mdns.RcodeSuccess, 1},
		{"sec.test.", "[::ffff:192.0.2.53]:53", mdns.RcodeSuccess, 1}, // coalesced with the pending one
	} {
		r := serveNotifyFrom(t, h, notifyMsg(t, c.zone), c.src)
		if r.Rcode != c.rcode || r.Opcode != mdns.OpcodeNotify || !r.Response || r.Authoritative != (c.rcode == mdns.RcodeSuccess) || len(r.Question) != 1 {
			t.Errorf("%d: NOTIFY %s from %s: %v", i, c.zone, c.src, r)
		}
		if len(z.notify) != c.pending {
			t.Errorf("%d: %d checks pending, want %d", i, len(z.notify), c.pending)
		}
	}
	want := [numNotifyResults]uint64{notifyAccepted: 1, notifyCoalesced: 1, notifyRefused: 1}
	for i := range want {
		if z.notifies[i].Load() != want[i] {
			t.Errorf("notifies %s: %d, want %d", notifyResultNames[i], z.notifies[i].Load(), want[i])
		}
	}
	// An ordinary query is answered as before.
	if r := serveNotifyFrom(t, h, mustPack(t, question("example.com.", mdns.TypeSOA)), "192.0.2.7:5300"); r.Rcode != 0 || len(r.Answer) != 1 {
		t.Errorf("SOA query: %v", r)
	}
}

func mustPack(t *testing.T, m *mdns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotifyTSIG: for a zone with a key, a NOTIFY signed by it gets a
// reply signed by it; unsigned, signed by another key or with another
// secret it gets NOTAUTH with the TSIG error, and queues nothing.
func TestNotifyTSIG(t *testing.T) {
	keys, err := ParseTSIGKeys([]byte(bindKeyText))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewServer(nil)
	primary := netip.MustParseAddrPort("127.0.0.1:53")
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "sec.test", Primaries: []netip.AddrPort{primary}, Key: "xfr"}}, Keys: keys}); err != nil {
		t.Fatal(err)
	}
	z := s.sec.zones[0]
	h := s.NewHandler(0)
	k, _ := keys.Get("xfr")
	signed := func(k TSIGKey) []byte {
		m := new(mdns.Msg)
		m.SetNotify("sec.test.")
		m.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
		b, _, err := mdns.TsigGenerate(m, k.Secret, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := signed(k)
	r := serveNotifyFrom(t, h, good, "127.0.0.1:4000")
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || r.Opcode != mdns.OpcodeNotify || r.IsTsig() == nil {
		t.Fatalf("signed NOTIFY: %v", r)
	}
	reqMAC := new(mdns.Msg)
	_ = reqMAC.Unpack(good)
	out, _ := r.Pack()
	if err := mdns.TsigVerify(out, k.Secret, reqMAC.IsTsig().MAC, false); err != nil {
		t.Errorf("the reply's TSIG does not verify: %v", err)
	}
	<-z.notify
	other, _ := keys.Get("other.key")
	wrongSecret := k
	wrongSecret.Secret = "c2hhcmRkIHdyb25nIGtleSBzaGFyZGQgd3Jvbmcga2V5"
	for name, c := range map[string]struct {
		raw     []byte
		tsigErr uint16
	}{"unsigned": {notifyMsg(t, "sec.test."), 0}, "other key": {signed(other), mdns.RcodeBadKey}, "wrong secret": {signed(wrongSecret), mdns.RcodeBadSig}} {
		r := serveNotifyFrom(t, h, c.raw, "127.0.0.1:4000")
		if r.Rcode != mdns.RcodeNotAuth || r.Authoritative {
			t.Errorf("%s: %v", name, r)
		}
		if ts := r.IsTsig(); (ts == nil) != (c.tsigErr == 0) || (ts != nil && (ts.Error != c.tsigErr || ts.MAC != "")) {
			t.Errorf("%s: TSIG %v, want error %d and no MAC", name, ts, c.tsigErr)
		}
	}
	if len(z.notify) != 0 || z.notifies[notifyNotAuth].Load() != 3 {
		t.Errorf("bad NOTIFYs: %d queued, %d counted notauth", len(z.notify), z.notifies[notifyNotAuth].Load())
	}
}

// TestServePacketAllocatesNothingAsSecondary: with secondary zones
// configured, ordinary queries still allocate nothing (NOTIFY is checked
// by its opcode only).
func TestServePacketAllocatesNothingAsSecondary(t *testing.T) {
	s := newTestServer(t)
	if err := s.EnableSecondaries(SecondaryConfig{Zones: []Secondary{{Zone: "sec.test", Primaries: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}}}}); err != nil {
		t.Fatal(err)
	}
	assertNoAllocs(t, s.NewHandler(0), hotQueries(t), "192.0.2.1:53")
	// An unsigned NOTIFY does not allocate either.
	assertNoAllocs(t, s.NewHandler(1), [][]byte{notifyMsg(t, "sec.test.")}, "192.0.2.7:53")
}

// TestSwapZoneKeepsOthers: swapping one zone in leaves every other zone
// of the set as it was (the same objects) and replaces only its own.
func TestSwapZoneKeepsOthers(t *testing.T) {
	s := newTestServer(t)
	before := s.Zones()
	z, err := newZone(secVersion(1), "x")
	if err != nil {
		t.Fatal(err)
	}
	s.swapZone(z, "transfer")
	after := s.Zones()
	if len(after.List) != len(before.List)+1 {
		t.Fatalf("%d zones, want %d", len(after.List), len(before.List)+1)
	}
	for _, old := range before.List {
		w, _ := wireName(old.Origin)
		if after.byOrigin[string(w)] != old {
			t.Errorf("zone %s changed", old.Origin)
		}
	}
	z2, _ := newZone(secVersion(2), "y")
	s.swapZone(z2, "transfer")
	if w, _ := wireName("sec.test."); s.Zones().byOrigin[string(w)] != z2 || len(s.Zones().List) != len(after.List) {
		t.Error("the second swap did not replace the zone")
	}
	if len(before.List) != 2 {
		t.Error("the old set was changed in place")
	}
}

func TestCopyFileName(t *testing.T) {
	for in, want := range map[string]string{"example.com.": "example.com.zone", ".": "root.zone", `a/b.c.`: "a%2fb.c.zone", ".hidden.": "%2ehidden.zone"} {
		if got := copyFileName(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestSerialLess: RFC 1982 order, a before b (a newer than b is
// serialLess(b, a)).
func TestSerialLess(t *testing.T) {
	for _, c := range []struct {
		a, b uint32
		want bool
	}{{2, 1, true}, {1, 2, false}, {1, 1, false}, {0, 0xFFFFFFFF, true}, {0xFFFFFFFF, 0, false}, {0x80000001, 1, false}, {0x7FFFFFFF, 0, true}} {
		if serialLess(c.b, c.a) != c.want {
			t.Errorf("serialLess(%d, %d) != %v", c.b, c.a, c.want)
		}
	}
}
