package syslog

import (
	"net/netip"
	"testing"
	"time"
)

// TestSourceKey: the key of a formatted line is its sender's address
// without the port, for IPv4 and IPv6 (with a zone), whatever the message
// says, and nil for a line that is not one of AppendJSON's.
func TestSourceKey(t *testing.T) {
	for _, from := range []string{"192.0.2.7:514", "[2001:db8::1]:40000", "[fe80::1%eth0]:9", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(from)
		var r Record
		Parse([]byte(`<13>1 2026-01-01T00:00:00Z h a - - - ","from":"10.9.9.9:1"`), time.Now(), &r)
		line := AppendJSON(nil, &r, &Origin{Received: time.Now(), From: ap, Proto: "udp"})
		if got, want := string(SourceKey(line)), ap.Addr().String(); got != want {
			t.Errorf("SourceKey(%s) = %q, want %q", line, got, want)
		}
	}
	for _, line := range []string{"", "{}", `{"received":"x","from":"`, `{"a":1}` + "\n"} {
		if k := SourceKey([]byte(line)); k != nil {
			t.Errorf("SourceKey(%q) = %q, want nil", line, k)
		}
	}
	line := AppendJSON(nil, &Record{}, &Origin{Received: time.Now(), From: netip.MustParseAddrPort("192.0.2.1:5"), Proto: "tcp"})
	if n := testing.AllocsPerRun(100, func() { _ = SourceKey(line) }); n != 0 {
		t.Errorf("SourceKey allocates %v times", n)
	}
}

// FuzzSourceKey: for any message and sender, the key of the formatted line
// is the sender's address; on any bytes SourceKey does not panic.
func FuzzSourceKey(f *testing.F) {
	f.Add([]byte("<13>hello"), []byte{192, 0, 2, 1}, uint16(514), int64(0))
	f.Add([]byte(`","from":"1.2.3.4:5"`), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(0), int64(-1))
	f.Fuzz(func(t *testing.T, msg, ip []byte, port uint16, ns int64) {
		_ = SourceKey(msg)
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		var r Record
		Parse(msg, time.Unix(0, ns), &r)
		line := AppendJSON(nil, &r, &Origin{Received: time.Unix(0, ns), From: netip.AddrPortFrom(addr, port), Proto: "udp"})
		if got, want := string(SourceKey(line)), addr.String(); got != want {
			t.Fatalf("SourceKey(%s) = %q, want %q", line, got, want)
		}
	})
}
