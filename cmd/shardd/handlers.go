package main

import (
	"flag"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
)

// handlerSpec is one --handler: the flags of its own, their check after
// parsing, and the constructor of its service.
type handlerSpec struct {
	name string
	// flags adds the handler's own flags. They belong to it: giving one with
	// another --handler is a usage error.
	flags func(fs *flag.FlagSet, o *options)
	// check validates the handler's flags when it is the one chosen; its
	// error is a usage error (exit 2).
	check func(o *options) error
	// newService builds the handler's service; its error is a start-up
	// failure (exit 1), printed as one line.
	newService func(o *options, log *zap.Logger) (service, error)
}

// handlers is every --handler. The choice list (sorted by name), the flags,
// their checks and which handler each flag belongs to all come from here.
var handlers = []handlerSpec{
	{name: "echo", newService: statelessService(packet.Echo{})},
	{name: "discard", newService: statelessService(packet.Discard{})},
	{name: "dns", flags: dnsFlags, check: checkDNS, newService: newDNSService},
	{name: "syslog", flags: syslogFlags, check: checkSyslog, newService: newSyslogService},
}

// handlerNames lists the --handler choices in the order --help shows them.
func handlerNames() []string {
	names := make([]string, len(handlers))
	for i, h := range handlers {
		names[i] = h.name
	}
	slices.Sort(names)
	return names
}

// handlerNamed returns the handler called name; parsing admits no other.
func handlerNamed(name string) handlerSpec {
	i := slices.IndexFunc(handlers, func(h handlerSpec) bool { return h.name == name })
	return handlers[i]
}

// addHandlerFlags adds every handler's flags to fs and returns, by flag
// name, the handler each flag of fs belongs to ("" for the daemon's own).
func addHandlerFlags(fs *flag.FlagSet, o *options) map[string]string {
	owner := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { owner[f.Name] = "" }) // the daemon's own
	for _, h := range handlers {
		if h.flags == nil {
			continue
		}
		h.flags(fs, o)
		fs.VisitAll(func(f *flag.Flag) {
			if _, ok := owner[f.Name]; !ok {
				owner[f.Name] = h.name
			}
		})
	}
	return owner
}

// checkHandlerFlags refuses a handler's flag given with another handler,
// then runs the chosen handler's check.
func checkHandlerFlags(o *options, owner map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(o.given)) {
		if h := owner[name]; h != "" && h != o.handler.value {
			return usagef("--%s is for --handler %s; add --handler %s or drop --%s", name, h, h, name)
		}
	}
	if check := handlerNamed(o.handler.value).check; check != nil {
		return check(o)
	}
	return nil
}

// statelessService is the constructor of a handler with no state across
// packets and nothing to reload, reopen or flush.
func statelessService(h packet.Handler) func(*options, *zap.Logger) (service, error) {
	return func(*options, *zap.Logger) (service, error) { return stateless{h}, nil }
}
