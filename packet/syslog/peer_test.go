package syslog

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

// TestTLSPeerInRecord: a TLS client certificate's subject is written as
// tls_peer, JSON-escaped, beside the truncation count; without one there
// is no tls_peer; writing it allocates nothing into a buffer large enough.
func TestTLSPeerInRecord(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var r Record
	Parse([]byte("<13>1 2026-11-25T12:00:00Z host app - - - hello"), now, &r)
	peer := `CN=a\"b,O=x` + "\x01"
	for _, c := range []struct {
		o    Origin
		want map[string]any
	}{
		{Origin{Received: now, From: netip.MustParseAddrPort("127.0.0.1:9"), Proto: "tcp", Peer: []byte(peer), Truncated: 5},
			map[string]any{"tls_peer": peer, "truncated_bytes": 5.0, "message": "hello", "proto": "tcp"}},
		{Origin{Received: now, From: netip.MustParseAddrPort("127.0.0.1:9"), Proto: "tcp", Peer: []byte("CN=c")},
			map[string]any{"tls_peer": "CN=c", "message": "hello"}},
		{Origin{Received: now, From: netip.MustParseAddrPort("127.0.0.1:9"), Proto: "udp"},
			map[string]any{"tls_peer": nil, "message": "hello"}},
	} {
		line := AppendJSON(nil, &r, &c.o)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for k, v := range c.want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", line, k, m[k], v)
			}
		}
	}
	o := Origin{Received: now, Proto: "tcp", Peer: []byte("CN=client1")}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], &r, &o) }); n != 0 {
		t.Errorf("AppendJSON with a peer: %v allocations", n)
	}
}
