// Command shardd serves UDP on one SO_REUSEPORT socket per CPU.
//
//	shardd [flags] ADDR [ADDR...]
//
// Run shardd --help for the flags. Exit codes: 0 clean stop, 1 runtime
// failure, 2 usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shardd/shardd/cmd/internal/cli"
	"github.com/shardd/shardd/shard"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

// options is the parsed command line.
type options struct {
	proto      choice
	maxConns   int
	idle       time.Duration
	writeTO    time.Duration
	maxFrame   int
	drain      time.Duration
	tcpShape   choice
	steer      choice
	gro        choice
	gso        choice     // --gso
	xdp        stringList // --xdp IFACE
	exclusive  bool
	guardEvery time.Duration
	pidfile    string
	shards     int
	pin        bool
	handler    choice
	batch      int
	rcvbuf     byteSize
	sndbuf     byteSize
	maxPacket  int
	metrics    string
	logLevel   choice
	logFormat  choice
	version    bool
	addrs      []string

	connMem  byteSize // --max-conn-memory
	shardMem byteSize // --max-shard-memory
	perIP    int      // --max-conns-per-ip

	given  map[string]bool // flags given on the command line
	dns    dnsOptions      // --handler dns
	syslog syslogOptions   // --handler syslog
	tls    tlsOptions      // --tls ADDR
}

// newFlagSet defines the flags into o, and returns with them the handler
// each handler's flag belongs to.
func newFlagSet(o *options) (*flag.FlagSet, map[string]string) {
	fs := flag.NewFlagSet("shardd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.proto = choice{"udp", []string{"udp", "tcp", "udp,tcp", "tcp,udp"}}
	o.tcpShape = choice{"", []string{"loop", "goroutines"}}
	o.steer = choice{"hash", []string{"hash", "cpu", "random"}}
	o.gro = choice{"auto", []string{"auto", "on", "off"}}
	o.gso = choice{"auto", []string{"auto", "on", "off"}}
	o.handler = choice{"echo", handlerNames()}
	o.logLevel = choice{"info", []string{"debug", "info", "warn", "error"}}
	o.logFormat = choice{"console", []string{"console", "json"}}
	o.rcvbuf = shard.DefaultRcvBuf
	fs.Var(&o.proto, "proto", "transports on every ADDR: udp, tcp or udp,tcp (same port)")
	fs.IntVar(&o.maxConns, "max-conns", shard.DefaultMaxConns, "TCP connections per shard; when full, a new one replaces the connection that completed no message for longest (1s or more), else it is accepted and closed at once")
	fs.DurationVar(&o.idle, "idle-timeout", shard.DefaultIdleTimeout, "close a TCP connection that completes no message for this long (slow clients included)")
	fs.DurationVar(&o.writeTO, "write-timeout", shard.DefaultWriteTimeout, "close a TCP connection that does not read its replies for this long")
	fs.Var(&o.steer, "steer", "how datagrams spread over shards: hash (kernel 4-tuple hash), random (BPF: one flow spreads evenly), cpu (BPF: the shard pinned to the receiving CPU; needs --pin)")
	fs.BoolVar(&o.exclusive, "exclusive", false, "attach a steering program that only picks shardd's own sockets, so a later socket of the same user on the port gets no traffic")
	fs.StringVar(&o.pidfile, "pidfile", "", "write the daemon's pid here (the new process rewrites it after an upgrade), and each upgrade's outcome to FILE.upgrade; shardd upgrade --pidfile FILE reads both")
	fs.DurationVar(&o.guardEvery, "guard-interval", 10*time.Second, "how often to look for sockets of other processes on the port")
	fs.Var(&o.tcpShape, "tcp-shape", "TCP connections served by one epoll loop on each shard's locked thread (loop) or by a goroutine each (goroutines)")
	fs.Lookup("tcp-shape").DefValue = "loop on Linux, goroutines elsewhere"
	fs.IntVar(&o.maxFrame, "max-frame", shard.DefaultMaxFrame, "largest TCP message; a longer frame closes the connection")
	// 0 (not given): the defaults follow --max-frame and --max-conns (shard.TCPMemory, shard.DefaultConnsPerIP).
	fs.Var(&o.connMem, "max-conn-memory", "most a TCP connection holds (input not yet served + replies not yet written; a size: 256K, 1M); at the limit it stops reading until the client takes its replies")
	fs.Lookup("max-conn-memory").DefValue = fmt.Sprintf("%dK, or what --max-frame needs if more", shard.DefaultMaxConnMemory>>10)
	fs.Var(&o.shardMem, "max-shard-memory", "most all TCP connections of a shard hold together (a size: 64M); a connection that would go over waits")
	fs.Lookup("max-shard-memory").DefValue = fmt.Sprintf("%dM, or --max-conn-memory if more", shard.DefaultMaxShardMemory>>20)
	fs.IntVar(&o.perIP, "max-conns-per-ip", 0, "TCP connections per source address (IPv6: per /64) per shard; more are accepted and closed at once")
	fs.Lookup("max-conns-per-ip").DefValue = fmt.Sprintf("%d, or a quarter of a lower --max-conns (at least 4)", shard.DefaultMaxConnsPerIP)
	fs.DurationVar(&o.drain, "drain-timeout", 2*time.Second, "on TERM/INT, how long UDP queues and open TCP connections get to finish before they are cut")
	fs.IntVar(&o.shards, "shards", shard.DefaultShards(), "shards (sockets and locked threads) per address; the default is GOMAXPROCS, which follows the CPU affinity mask and cgroup limits (1 off Linux)")
	fs.BoolVar(&o.pin, "pin", false, "pin shard i to the i-th CPU the process may run on")
	fs.Var(&o.handler, "handler", "what to do with each datagram: "+strings.Join(o.handler.allowed, "|"))
	fs.IntVar(&o.batch, "batch", shard.DefaultBatch, fmt.Sprintf("datagrams per recvmmsg/sendmmsg call, 1..%d", shard.MaxBatch))
	fs.Var(&o.rcvbuf, "rcvbuf", "socket receive buffer per shard (a size: 4M, 512K, bytes); 0 = kernel default; above net.core.rmem_max needs root (or CAP_NET_ADMIN)")
	fs.Var(&o.sndbuf, "sndbuf", "socket send buffer per shard (a size); 0 = kernel default")
	fs.IntVar(&o.maxPacket, "max-packet", shard.DefaultMaxPacket, "largest datagram handled; longer datagrams are counted as truncated (without GRO also the receive buffer per datagram)")
	fs.Var(&o.gro, "gro", "UDP generic receive offload: the kernel hands over a flow's datagrams coalesced, split again in place (receive slots are then 64K each); auto = on where the kernel supports it, on = fail if it cannot")
	fs.Var(&o.gso, "gso", "send a batch's equal-size replies to one client as one UDP_SEGMENT (GSO) send: auto (where the kernel supports it), on (refuse to start without it), off")
	fs.Var(&o.xdp, "xdp", "also take the UDP datagrams to ADDR on this interface by AF_XDP (repeat for more; Linux, root or CAP_NET_ADMIN+CAP_BPF+CAP_NET_RAW): an XDP program redirects them from receive queue i to shard i, bypassing the firewall and tcpdump; everything else on the interface goes to the kernel; one UDP address only")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus /metrics and /healthz on this address, e.g. 127.0.0.1:9153 (off when empty)")
	fs.Var(&o.logLevel, "log-level", "debug|info|warn|error")
	fs.Var(&o.logFormat, "log-format", "console|json")
	fs.BoolVar(&o.version, "version", false, "print the version, commit and Go version, and exit (also: shardd version)")
	addTLSFlags(fs, o)
	return fs, addHandlerFlags(fs, o)
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: shardd [flags] ADDR [ADDR...]
       shardd COMMAND [flags] [ARGS]   (shardd COMMAND --help for each)

Serves each ADDR with its own set of SO_REUSEPORT sockets, one per shard.
ADDR is :PORT (IPv4 and IPv6), IPv4:PORT or [IPv6]:PORT; --tls ADDR serves TLS there.

Example: shardd --proto udp :5353

Commands:
`)
	printCommands(w)
	fmt.Fprint(w, "\nFlags (sizes take K, M, G or KiB, MiB, GiB, in any case; durations a unit: 500ms, 30s, 2m):\n")
	cli.PrintFlagsNamed(w, fs, flagArg)
	fmt.Fprint(w, `
Signals: TERM/INT stop gracefully; USR2 upgrades the binary without dropping traffic
(shardd upgrade --pidfile FILE sends it and waits for the outcome); HUP reloads
configuration (--zone files, the --tls-cert pair); USR1 reopens output files (--sink).
Exit codes: 0 clean stop, 1 runtime failure, 2 usage error.
`)
}

func parseArgs(args []string, stdout io.Writer) (*options, bool, error) {
	return parseServeArgs(args, stdout, printUsage)
}

// parseServeArgs parses a serving command line (shardd's own, or shardd
// check's); --help prints usage. done means exit 0 (after --help or
// --version).
func parseServeArgs(args []string, stdout io.Writer, usage func(io.Writer, *flag.FlagSet)) (o *options, done bool, err error) {
	o = &options{}
	fs, owner := newFlagSet(o)
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout, fs)
		return nil, true, nil
	}
	if err != nil {
		return nil, false, rewriteFlagError(fs, err)
	}
	if o.version {
		fmt.Fprintln(stdout, readBuildInfo())
		return nil, true, nil
	}
	o.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = true })
	if err := checkArgs(o, pos); err != nil {
		return nil, false, err
	}
	o.addrs = pos
	if err := checkHandlerFlags(o, owner); err != nil {
		return nil, false, err
	}
	if err := checkTLSFlags(o); err != nil {
		return nil, false, err
	}
	return o, false, nil
}

func newLogger(o *options, stderr io.Writer) *zap.Logger {
	var lvl zapcore.Level
	_ = lvl.Set(o.logLevel.value)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if o.logFormat.value == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), lvl))
}

// run is main without os.Exit, so tests can check messages and exit codes.
// A nil sig means listening for the process's own signals.
func run(args []string, stdout, stderr io.Writer, sig chan os.Signal) int {
	if code, ok := runSubcommand(args, stdout, stderr); ok {
		return code
	}
	o, done, err := parseArgs(args, stdout)
	if done {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardd: %v\n", err)
		return exitUsage
	}
	log := newLogger(o, stderr)
	defer func() { _ = log.Sync() }()
	// A write to a closed pipe (--sink - into a reader that went away) must
	// be an EPIPE error the sink counts and retries, not a fatal SIGPIPE.
	// Go only makes SIGPIPE fatal for writes to fds 1 and 2; ignoring it
	// keeps stderr logging safe too.
	signal.Ignore(syscall.SIGPIPE)
	if sig == nil {
		sig = make(chan os.Signal, 4)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, sigUSR1, sigUSR2)
		defer signal.Stop(sig)
	}

	srv, err := startServer(o, log, sig)
	if err != nil {
		fmt.Fprintf(stderr, "shardd: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitRuntime
	}
	return srv.stop(srv.serve())
}
