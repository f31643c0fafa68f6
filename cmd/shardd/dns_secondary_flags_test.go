package main

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestParseSecondary: --secondary takes a zone, IP primaries with an
// optional port (53 by default) and an optional key name; anything else is
// a usage error that shows the form.
func TestParseSecondary(t *testing.T) {
	for in, want := range map[string]struct {
		zone, key string
		prim      []string
	}{
		"example.com@127.0.0.1:5300":                      {"example.com", "", []string{"127.0.0.1:5300"}},
		"example.com.@192.0.2.1,[2001:db8::1]:53/key=xfr": {"example.com.", "xfr", []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		"x.test@::1/key=a.b.":                             {"x.test", "a.b.", []string{"[::1]:53"}},
	} {
		s, err := parseSecondary(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var prim []string
		for _, p := range s.Primaries {
			prim = append(prim, p.String())
		}
		if s.Zone != want.zone || s.Key != want.key || !slices.Equal(prim, want.prim) {
			t.Errorf("%s: %+v", in, s)
		}
	}
	for _, in := range []string{"example.com", "@127.0.0.1", "example.com@", "example.com@ns1.example.net", "example.com@127.0.0.1/key=", "example.com@127.0.0.1:99999"} {
		_, err := parseSecondary(in)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), secondaryFlagForm) {
			t.Errorf("%q: %v, want a usage error showing %s", in, err, secondaryFlagForm)
		}
	}
}

// TestCheckSecondaries: a key name needs --tsig-keys, --zone-dir needs a
// --secondary, and --handler dns runs with secondaries and no --zone.
func TestCheckSecondaries(t *testing.T) {
	for _, c := range []struct {
		d    dnsOptions
		want string
	}{
		{dnsOptions{secondaries: stringList{"a.test@127.0.0.1/key=k"}}, "--tsig-keys"},
		{dnsOptions{zoneDir: "/var/lib/shardd"}, "--zone-dir is for"},
		{dnsOptions{}, "--zone FILE or --secondary"},
	} {
		o := &options{dns: c.d}
		if err := checkDNS(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.d, err, c.want)
		}
	}
	o := &options{dns: dnsOptions{secondaries: stringList{"a.test@127.0.0.1:5300"}}}
	o.dns.rrl.IPv4Prefix, o.dns.rrl.IPv6Prefix = 24, 56 // the flags' defaults
	o.dns.primary.xfrConns = 64
	if err := checkDNS(o); err != nil || len(o.dns.parsed) != 1 || o.dns.parsed[0].Primaries[0] != netip.MustParseAddrPort("127.0.0.1:5300") {
		t.Errorf("a --secondary alone: %v %+v", err, o.dns.parsed)
	}
}
