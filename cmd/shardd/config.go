package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shardd/shardd/shard"
)

// flagOf names the flag that sets each shard.Config field.
var flagOf = map[string]string{
	"Shards": "shards", "Pin": "pin", "Batch": "batch", "MaxPacket": "max-packet",
	"RcvBuf": "rcvbuf", "SndBuf": "sndbuf", "Steer": "steer", "Exclusive": "exclusive", "GRO": "gro",
	"MaxConns": "max-conns", "IdleTimeout": "idle-timeout", "WriteTimeout": "write-timeout",
	"TCPShape": "tcp-shape", "MaxFrame": "max-frame", "MaxConnMemory": "max-conn-memory",
	"MaxShardMemory": "max-shard-memory", "MaxConnsPerIP": "max-conns-per-ip", "GSO": "gso", "XDP": "xdp",
}

var fieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]+\b`)

// shardConfig is the shard.Config the flags describe for addr (without the
// handler, logger and inherited sockets, which listenAll adds).
//
// Config reads a zero as "the default", but on the command line a zero is a
// mistake (the default is what leaving the flag out gives). Such a field is
// set to -1 instead, which Validate refuses with the words it has for zero;
// zeroed records it so that the message shows the value as given.
func (o *options) shardConfig(addr string) (cfg shard.Config, zeroed map[string]string) {
	zeroed = map[string]string{}
	n := func(field string, v int) int {
		if v == 0 {
			zeroed[field] = "0"
			return -1
		}
		return v
	}
	d := func(field string, v time.Duration) time.Duration {
		if v == 0 {
			zeroed[field] = "0s"
			return -1
		}
		return v
	}
	cfg = shard.Config{
		Addr:         addr,
		Shards:       n("Shards", o.shards),
		Pin:          o.pin,
		Batch:        n("Batch", o.batch),
		MaxPacket:    n("MaxPacket", o.maxPacket),
		RcvBuf:       rcvbufConfig(o.rcvbuf),
		SndBuf:       int(o.sndbuf),
		UDP:          strings.Contains(o.proto.value, "udp"),
		TCP:          strings.Contains(o.proto.value, "tcp"),
		MaxConns:     n("MaxConns", o.maxConns),
		IdleTimeout:  d("IdleTimeout", o.idle),
		WriteTimeout: d("WriteTimeout", o.writeTO),
		MaxFrame:     n("MaxFrame", o.maxFrame),
		Exclusive:    o.exclusive,
		// 0 here means not given: these defaults follow --max-frame and
		// --max-conns (a zero given is refused by checkArgs first).
		MaxConnMemory:  int(o.connMem),
		MaxShardMemory: int(o.shardMem),
		MaxConnsPerIP:  o.perIP,
		XDP:            o.xdp,
	}
	// The choice flags admit only the spellings these accept.
	_ = cfg.Steer.UnmarshalText([]byte(o.steer.value))
	_ = cfg.TCPShape.UnmarshalText([]byte(o.tcpShape.value))
	_ = cfg.GRO.UnmarshalText([]byte(o.gro.value))
	_ = cfg.GSO.UnmarshalText([]byte(o.gso.value))
	return cfg, zeroed
}

// rcvbufConfig maps --rcvbuf to Config.RcvBuf: 0 on the command line keeps
// the kernel default.
func rcvbufConfig(b byteSize) int {
	if b == 0 {
		return shard.KernelDefault
	}
	return int(b)
}

// firstGiven is the first of names given on the command line ("" if none):
// for the flags that mean nothing without another.
func (o *options) firstGiven(names ...string) string {
	for _, n := range names {
		if o.given[n] {
			return n
		}
	}
	return ""
}

// checkArgs checks the flags and addresses parsed, in the order a reader
// of the command line meets them, before anything binds.
func checkArgs(o *options, pos []string) error {
	// Flags whose default is computed (0 when not given): a zero given is
	// a mistake, not a request for the default.
	if o.given["max-conns-per-ip"] && o.perIP < 1 {
		return usagef("--max-conns-per-ip %d: must be at least 1 (set it to --max-conns for no per-address limit)", o.perIP)
	}
	for name, v := range map[string]byteSize{"max-conn-memory": o.connMem, "max-shard-memory": o.shardMem} {
		if o.given[name] && v < 1 {
			return usagef("--%s %d: must be positive (omit it for the default)", name, int(v))
		}
	}
	// The ranges are the core's (shard.Config.Validate); explicit zeros,
	// which Config reads as "the default", are refused there too.
	if err := checkConfig(o); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{"drain-timeout": o.drain, "guard-interval": o.guardEvery} {
		if d <= 0 {
			return usagef("--%s %v: must be positive, e.g. 30s", name, d)
		}
	}
	if len(pos)+len(o.tls.addrs) == 0 {
		return usagef("no address to listen on; usage: shardd [flags] ADDR [ADDR...], e.g. shardd --proto udp :5353")
	}
	// Check every address before anything binds: a bad one is a usage
	// error (2) even when another would have failed to bind first.
	for _, a := range pos {
		if _, _, err := shard.ParseAddr(a); err != nil {
			return err
		}
	}
	if err := cmp.Or(checkMetricsAddr(o.metrics), checkXDPArgs(o, pos)); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range pos {
		if seen[a] {
			return usagef("address %s is given twice; give each address once", a)
		}
		seen[a] = true
	}
	return nil
}

// checkXDPArgs refuses --xdp with more than one UDP address: an interface
// takes one XDP program, and each address's group would attach its own.
func checkXDPArgs(o *options, pos []string) error {
	if len(o.xdp) > 0 && len(pos) > 1 && strings.Contains(o.proto.value, "udp") {
		return usagef("--xdp serves one UDP address, and %d are given: an interface takes one XDP program; run one shardd per address, or listen on :PORT", len(pos))
	}
	return nil
}

// checkMetricsAddr checks --metrics: empty (off) or HOST:PORT.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	_, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
		return usagef("--metrics %s: want HOST:PORT such as 127.0.0.1:9153 or :9153", addr)
	}
	return nil
}

// checkConfig runs the core's one check of the settings (shard.Config's
// Validate) on what the flags describe. Addresses are checked one by one
// by the caller, so an address error here (Validate checks it last, after
// everything else passed) is not one.
func checkConfig(o *options) error {
	cfg, zeroed := o.shardConfig("")
	var ce *shard.ConfigError
	if err := cfg.Validate(); errors.As(err, &ce) && ce.Field != "Addr" {
		return flagError(ce, zeroed)
	}
	return nil
}

// flagError says a *shard.ConfigError in the command line's words: each
// Config field named becomes its flag ("MaxFrame" -> "--max-frame").
func flagError(ce *shard.ConfigError, zeroed map[string]string) error {
	flag, ok := flagOf[ce.Field]
	if !ok {
		return usagef("%v", ce) // the address, which has no flag
	}
	value := ce.Value
	if v, ok := zeroed[ce.Field]; ok {
		value = v
	}
	msg := fmt.Sprintf("--%s %s: %s", flag, value, toFlags(ce.Problem))
	if ce.Hint != "" {
		msg += " (" + toFlags(ce.Hint) + ")"
	}
	return usagef("%s", msg)
}

// listenErrorInFlags returns a *shard.ListenError with its hint in the
// command line's words; any other error as it is.
func listenErrorInFlags(err error) error {
	le, ok := err.(*shard.ListenError)
	if !ok {
		return err
	}
	c := *le
	c.Hint = toFlags(c.Hint)
	return &c
}

// toFlags replaces each Config field name in s by its flag.
func toFlags(s string) string {
	return fieldName.ReplaceAllStringFunc(s, func(w string) string {
		if f, ok := flagOf[w]; ok {
			return "--" + f
		}
		return w
	})
}
