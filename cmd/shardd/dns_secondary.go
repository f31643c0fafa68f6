package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/shardd/shardd/packet/dns"
)

// secondaryFlagForm is --secondary's value, for errors and the manual.
const secondaryFlagForm = "ZONE@ADDR[:PORT][,ADDR[:PORT]...][/key=NAME]"

// parseSecondary reads one --secondary value: the zone, its primaries
// (IP addresses, port 53 unless given; IPv6 with a port in brackets) and
// an optional TSIG key name from --tsig-keys.
func parseSecondary(v string) (dns.Secondary, error) {
	var s dns.Secondary
	bad := func(why string) error {
		return usagef("--secondary %q: %s; give %s, e.g. example.com@192.0.2.1:53/key=xfr", v, why, secondaryFlagForm)
	}
	rest, key, hasKey := strings.Cut(v, "/key=")
	if hasKey {
		if key == "" {
			return s, bad("no key name after /key=")
		}
		s.Key = key
	}
	zone, primaries, ok := strings.Cut(rest, "@")
	if !ok || zone == "" || primaries == "" {
		return s, bad("no zone or no primary")
	}
	s.Zone = zone
	for _, p := range strings.Split(primaries, ",") {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			a, aerr := netip.ParseAddr(strings.Trim(p, "[]"))
			if aerr != nil {
				return s, bad(fmt.Sprintf("primary %q is not an IP address with an optional port", p))
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		s.Primaries = append(s.Primaries, ap)
	}
	return s, nil
}

// checkSecondaries checks the secondary flags (at parse time, before any
// file is read).
func checkSecondaries(d *dnsOptions) error {
	d.parsed = nil
	for _, v := range d.secondaries {
		s, err := parseSecondary(v)
		if err != nil {
			return err
		}
		if err := needKeyFile(d, "secondary", strconv.Quote(v), s.Key); err != nil {
			return err
		}
		d.parsed = append(d.parsed, s)
	}
	if d.zoneDir != "" && len(d.parsed) == 0 {
		return usagef("--zone-dir is for the copies of --secondary zones: give at least one --secondary ZONE@ADDR")
	}
	return nil
}

// needKeyFile refuses --flag value when it names a TSIG key (key) and no
// --tsig-keys file is given to find it in.
func needKeyFile(d *dnsOptions, flag, value, key string) error {
	if key != "" && d.tsigKeys == "" {
		return usagef("--%s %s names a TSIG key: give the key file with --tsig-keys FILE", flag, value)
	}
	return nil
}
