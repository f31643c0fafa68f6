package main

import (
	"flag"
)

// dnsOptions are the flags of --handler dns.
type dnsOptions struct {
	zones stringList
}

func init() {
	handlerFlags = append(handlerFlags, func(fs *flag.FlagSet, o *options) {
		fs.Var(&o.dns.zones, "zone", "zone file to serve with --handler dns (RFC 1035 master file; repeat for more zones)")
	})
	handlerChecks = append(handlerChecks, func(o *options) error {
		if o.handler.value == "dns" && len(o.dns.zones) == 0 {
			return usagef("--handler dns needs at least one --zone FILE, e.g. --zone testdata/dns/example.com.zone")
		}
		if o.handler.value != "dns" && len(o.dns.zones) > 0 {
			return usagef("--zone is for --handler dns; add --handler dns or drop --zone")
		}
		return nil
	})
}
