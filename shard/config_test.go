package shard

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]struct{ network, addr string }{
		":5353":                {"udp", "[::]:5353"},
		"127.0.0.1:5353":       {"udp4", "127.0.0.1:5353"},
		"0.0.0.0:53":           {"udp4", "0.0.0.0:53"},
		"[::1]:5353":           {"udp6", "[::1]:5353"},
		"[::]:0":               {"udp6", "[::]:0"},
		"[::ffff:127.0.0.1]:9": {"udp4", "127.0.0.1:9"},
		"[fe80::1%lo]:5353":    {"udp6", "[fe80::1%lo]:5353"},
	} {
		network, ap, err := ParseAddr(in)
		if err != nil || network != want.network || ap.String() != want.addr {
			t.Errorf("ParseAddr(%q) = %s %v %v, want %s %s", in, network, ap, err, want.network, want.addr)
		}
	}
	for _, bad := range []string{"", "5353", ":", ":-1", ":+53", ":65536", ":http", "localhost:53", "1.2.3:53", "[::1:53", "::1:53"} {
		_, _, err := ParseAddr(bad)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Hint == "" {
			t.Errorf("ParseAddr(%q) = %v, want a *ConfigError with a hint", bad, err)
		}
	}
}

func TestResolveDefaultsAndLimits(t *testing.T) {
	r, err := Config{Addr: ":0"}.resolve(3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Shards != 3 || r.Batch != DefaultBatch || r.MaxPacket != DefaultMaxPacket || r.RcvBuf != DefaultRcvBuf || r.SndBuf != 0 || r.NewHandler == nil || r.Logger == nil {
		t.Fatalf("defaults not applied: %+v", r)
	}
	if r, _ := (Config{Addr: ":0", RcvBuf: KernelDefault}).resolve(1); r.RcvBuf != 0 {
		t.Fatalf("KernelDefault resolved to %d", r.RcvBuf)
	}
	for _, c := range []Config{
		{Addr: ":0", Shards: -1}, {Addr: ":0", Batch: MaxBatch + 1}, {Addr: ":0", Batch: -1},
		{Addr: ":0", MaxPacket: 65536}, {Addr: ":0", RcvBuf: -2}, {Addr: ":0", SndBuf: -1},
	} {
		var ce *ConfigError
		if _, err := c.resolve(1); !errors.As(err, &ce) {
			t.Errorf("%+v: %v, want *ConfigError", c, err)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{":5353", "127.0.0.1:0", "[::1]:53", "[fe80::1%eth0]:1", "x:y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		network, ap, err := ParseAddr(s)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if !ap.IsValid() || (network == "udp4") != ap.Addr().Is4() {
			t.Fatalf("ParseAddr(%q) = %s %v", s, network, ap)
		}
		// What parses must parse again to the same thing.
		n2, ap2, err := ParseAddr(ap.String())
		if network != "udp" && (err != nil || n2 != network || ap2 != ap) {
			t.Fatalf("%q -> %v -> %s %v %v", s, ap, n2, ap2, err)
		}
	})
}

var _ = netip.AddrPort{}
