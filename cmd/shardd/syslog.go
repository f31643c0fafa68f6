package main

import (
	"flag"
)

// syslogOptions are the flags of --handler syslog.
type syslogOptions struct {
	sink string
}

func init() {
	handlerFlags = append(handlerFlags, func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.syslog.sink, "sink", "", "with --handler syslog: where records go, - for standard output or a FILE to append to")
	})
	handlerChecks = append(handlerChecks, func(o *options) error {
		if o.handler.value != "syslog" && o.syslog.sink != "" {
			return usagef("--sink is for --handler syslog; add --handler syslog or drop --sink")
		}
		return nil
	})
}
