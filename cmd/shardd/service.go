package main

import (
	"context"
	"flag"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
)

// service is what a --handler brings beyond serving one packet: state to
// reload on SIGHUP (DNS zones), output to reopen on SIGUSR1 (the syslog
// sink), metrics of its own, and work to finish after the shards stop.
type service interface {
	// NewHandler returns shard i's handler; it is called once per shard and
	// transport, before serving starts.
	NewHandler(shard int) packet.Handler
	// Reload re-reads configuration (SIGHUP). An error leaves the old
	// configuration serving.
	Reload() error
	// Reopen reopens output files (SIGUSR1).
	Reopen() error
	// Collectors are registered on /metrics beside the shard counters.
	Collectors() []prometheus.Collector
	// Close runs after every shard stopped: it flushes what was accepted.
	Close(ctx context.Context) error
}

// errNothing is returned by Reload/Reopen of services that have nothing to
// reload or reopen; the daemon logs the signal as ignored.
type nothingError string

func (e nothingError) Error() string { return string(e) }

const (
	errNothingToReload = nothingError("nothing to reload for this handler")
	errNothingToReopen = nothingError("no output files to reopen for this handler")
)

// services maps --handler names to constructors. A constructor's error is a
// start-up failure (exit 1), printed as one line.
var services = map[string]func(o *options, log *zap.Logger) (service, error){
	"echo":    func(*options, *zap.Logger) (service, error) { return stateless{packet.Echo{}}, nil },
	"discard": func(*options, *zap.Logger) (service, error) { return stateless{packet.Discard{}}, nil },
}

// stateless is a handler with no state across packets.
type stateless struct{ h packet.Handler }

func (s stateless) NewHandler(int) packet.Handler    { return s.h }
func (stateless) Reload() error                      { return errNothingToReload }
func (stateless) Reopen() error                      { return errNothingToReopen }
func (stateless) Collectors() []prometheus.Collector { return nil }
func (stateless) Close(context.Context) error        { return nil }

// handlerFlags add each handler's own flags; handlerChecks validate them
// after parsing (a usage error exits 2); flagOwner names the handler each
// such flag belongs to, so giving it with another handler is refused in one
// place. Each handler's file fills all three in an init function.
var (
	handlerFlags  []func(fs *flag.FlagSet, o *options)
	handlerChecks []func(o *options) error
	flagOwner     = map[string]string{}
)

// checkFlagOwners refuses a handler's flag given with another handler.
func checkFlagOwners(o *options) error {
	for _, name := range sortedKeys(o.given) {
		if owner, ok := flagOwner[name]; ok && owner != o.handler.value {
			return usagef("--%s is for --handler %s; add --handler %s or drop --%s", name, owner, owner, name)
		}
	}
	return nil
}
