package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

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

// stateless is a handler with no state across packets.
type stateless struct{ h packet.Handler }

func (s stateless) NewHandler(int) packet.Handler    { return s.h }
func (stateless) Reload() error                      { return errNothingToReload }
func (stateless) Reopen() error                      { return errNothingToReopen }
func (stateless) Collectors() []prometheus.Collector { return nil }
func (stateless) Close(context.Context) error        { return nil }
