// Command shardd serves UDP on one SO_REUSEPORT socket per CPU.
//
//	shardd [flags] ADDR [ADDR...]
//
// Run shardd --help for the flags. Exit codes: 0 clean stop, 1 runtime
// failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shardd/shardd/cmd/internal/cli"
	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/metrics/fdlimit"
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
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("shardd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.proto = choice{"udp", []string{"udp", "tcp", "udp,tcp", "tcp,udp"}}
	o.tcpShape = choice{"", []string{"loop", "goroutines"}}
	o.steer = choice{"hash", []string{"hash", "cpu", "random"}}
	o.handler = choice{"echo", sortedKeys(services)}
	o.logLevel = choice{"info", []string{"debug", "info", "warn", "error"}}
	o.logFormat = choice{"console", []string{"console", "json"}}
	o.rcvbuf = shard.DefaultRcvBuf
	fs.Var(&o.proto, "proto", "transports on every ADDR: udp, tcp or udp,tcp (same port)")
	fs.IntVar(&o.maxConns, "max-conns", shard.DefaultMaxConns, "TCP connections per shard; when full, a new one replaces the connection that completed no message for longest (1s or more), else it is accepted and closed at once")
	fs.DurationVar(&o.idle, "idle-timeout", shard.DefaultIdleTimeout, "close a TCP connection that completes no message for this long (slow clients included)")
	fs.DurationVar(&o.writeTO, "write-timeout", shard.DefaultWriteTimeout, "close a TCP connection that does not read its replies for this long")
	fs.Var(&o.steer, "steer", "how datagrams spread over shards: hash (kernel 4-tuple hash), random (BPF: one flow spreads evenly), cpu (BPF: the shard pinned to the receiving CPU; needs --pin)")
	fs.BoolVar(&o.exclusive, "exclusive", false, "attach a steering program that only picks shardd's own sockets, so a later socket of the same user on the port gets no traffic")
	fs.StringVar(&o.pidfile, "pidfile", "", "write the daemon's pid here (the new process rewrites it after an upgrade); used by shardd upgrade")
	fs.DurationVar(&o.guardEvery, "guard-interval", 10*time.Second, "how often to look for sockets of other processes on the port")
	fs.Var(&o.tcpShape, "tcp-shape", "TCP connections served by one epoll loop on each shard's locked thread (loop, the default on Linux) or by a goroutine each (goroutines)")
	fs.IntVar(&o.maxFrame, "max-frame", shard.DefaultMaxFrame, "largest TCP message; a longer frame closes the connection")
	// 0 (not given): the defaults follow --max-frame and --max-conns (shard.TCPMemory, shard.DefaultConnsPerIP).
	fs.Var(&o.connMem, "max-conn-memory", "most a TCP connection holds (input not yet served + replies not yet written; K, M suffixes); at the limit it stops reading until the client takes its replies")
	fs.Lookup("max-conn-memory").DefValue = fmt.Sprintf("%dK, or what --max-frame needs if more", shard.DefaultMaxConnMemory>>10)
	fs.Var(&o.shardMem, "max-shard-memory", "most all TCP connections of a shard hold together (K, M suffixes); a connection that would go over waits")
	fs.Lookup("max-shard-memory").DefValue = fmt.Sprintf("%dM, or --max-conn-memory if more", shard.DefaultMaxShardMemory>>20)
	fs.IntVar(&o.perIP, "max-conns-per-ip", 0, "TCP connections per source address (IPv6: per /64) per shard; more are accepted and closed at once")
	fs.Lookup("max-conns-per-ip").DefValue = fmt.Sprintf("%d, or a quarter of a lower --max-conns (at least 4)", shard.DefaultMaxConnsPerIP)
	fs.DurationVar(&o.drain, "drain-timeout", 2*time.Second, "on TERM/INT, how long UDP queues and open TCP connections get to finish before they are cut")
	fs.IntVar(&o.shards, "shards", runtime.GOMAXPROCS(0), "shards (sockets and locked threads) per address; the default is GOMAXPROCS, which follows the CPU affinity mask and cgroup limits")
	fs.BoolVar(&o.pin, "pin", false, "pin shard i to the i-th CPU the process may run on")
	fs.Var(&o.handler, "handler", "what to do with each datagram: "+strings.Join(o.handler.allowed, "|"))
	fs.IntVar(&o.batch, "batch", shard.DefaultBatch, fmt.Sprintf("datagrams per recvmmsg/sendmmsg call, 1..%d", shard.MaxBatch))
	fs.Var(&o.rcvbuf, "rcvbuf", "socket receive buffer per shard in bytes (K, M suffixes); 0 = kernel default; above net.core.rmem_max needs root")
	fs.Var(&o.sndbuf, "sndbuf", "socket send buffer per shard in bytes; 0 = kernel default")
	fs.IntVar(&o.maxPacket, "max-packet", shard.DefaultMaxPacket, "receive buffer per datagram; longer datagrams are counted as truncated")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus /metrics and /healthz on this address, e.g. 127.0.0.1:9153 (off when empty)")
	fs.Var(&o.logLevel, "log-level", "debug|info|warn|error")
	fs.Var(&o.logFormat, "log-format", "console|json")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	for _, add := range handlerFlags {
		add(fs, o)
	}
	return fs
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `Usage: shardd [flags] ADDR [ADDR...]
       shardd inspect [--json] [--watch] ADDR

Serves each ADDR with its own set of SO_REUSEPORT sockets, one per shard.
ADDR is :PORT (IPv4 and IPv6), IPv4:PORT or [IPv6]:PORT.

Example: shardd --proto udp :5353

Flags:
`)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%-12s %s%s\n", f.Name, f.Usage, def)
	})
	fmt.Fprintf(w, `
Signals: TERM/INT stop gracefully; USR2 upgrades the binary without dropping traffic;
HUP reloads configuration (--zone files); USR1 reopens output files (--sink).
       shardd upgrade --pidfile FILE   (sends USR2 to the daemon that wrote FILE)
Exit codes: 0 clean stop, 1 runtime failure, 2 usage error.
`)
}

func parseArgs(args []string, stdout io.Writer) (*options, bool, error) {
	o := &options{}
	fs := newFlagSet(o)
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs)
		return nil, true, nil
	}
	if err != nil {
		return nil, false, rewriteFlagError(err)
	}
	if o.version {
		fmt.Fprintln(stdout, "shardd", version())
		return nil, true, nil
	}
	o.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = true })
	if err := checkArgs(o, pos); err != nil {
		return nil, false, err
	}
	if err := checkFlagOwners(o); err != nil {
		return nil, false, err
	}
	for _, check := range handlerChecks {
		if err := check(o); err != nil {
			return nil, false, err
		}
	}
	o.addrs = pos
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
	if len(args) > 0 && args[0] == "upgrade" {
		return runUpgradeCommand(args[1:], os.Stderr)
	}
	if len(args) > 0 && args[0] == "inspect" {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(stop)
		return runInspect(args[1:], stdout, stderr, stop)
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
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sig)
	}

	// Sockets handed over by an upgrade, if this process is the new one.
	inh, err := takeInherited()
	if err != nil {
		fmt.Fprintf(stderr, "shardd: %v\n", err)
		return exitRuntime
	}
	exe, _ := os.Executable()
	fromSystemd := false
	if inh == nil {
		act, err := takeActivated()
		if err != nil {
			fmt.Fprintf(stderr, "shardd: socket activation: %v\n", err)
			return exitRuntime
		}
		if len(act) > 0 {
			var unused []activatedSocket
			inh, unused = assignActivated(act, o.addrs)
			for _, u := range unused {
				log.Warn("systemd passed a socket no ADDR asks for; closing it", zap.String("proto", u.proto), zap.Stringer("local", u.local))
				_ = u.file.Close()
			}
			fromSystemd = true
		}
	}
	// A pidfile that cannot be written safely stops the start: checked
	// here, before anything binds, so the failure is one line.
	if o.pidfile != "" {
		if err := checkPidfile(o.pidfile); err != nil {
			fmt.Fprintf(stderr, "shardd: %v\n", err)
			return exitRuntime
		}
	}
	ntf := newNotifier()
	svc, err := services[o.handler.value](o, log)
	if err != nil {
		fmt.Fprintf(stderr, "shardd: %v\n", err)
		return exitRuntime
	}

	// Bind everything before logging that anything listens: a start-up
	// failure leaves one line on stderr and nothing else.
	var metricsLn net.Listener
	if inh != nil && inh.metrics != nil && o.metrics != "" {
		if metricsLn, err = net.FileListener(inh.metrics); err != nil {
			fmt.Fprintf(stderr, "shardd: inherited metrics listener: %v\n", err)
			return exitRuntime
		}
		_ = inh.metrics.Close()
	} else if o.metrics != "" {
		if metricsLn, err = net.Listen("tcp", o.metrics); err != nil {
			fmt.Fprintf(stderr, "shardd: cannot serve metrics on %s: %v (pick a free address for --metrics, e.g. 127.0.0.1:9153)\n", o.metrics, err)
			return exitRuntime
		}
	}
	groups, err := listenAll(o, log, inh, inh != nil && !fromSystemd, svc)
	if err != nil {
		if metricsLn != nil {
			_ = metricsLn.Close()
		}
		_ = svc.Close(context.Background())
		var ce *shard.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "shardd: %v\n", flagError(ce, nil))
			return exitUsage
		}
		fmt.Fprintf(stderr, "shardd: %v\n", listenErrorInFlags(err))
		return exitRuntime
	}
	for _, g := range groups {
		logListening(log, g.Info(), o)
	}
	grd := newGuard(groups, log)
	grd.check()
	upg := newUpgrader(exe, os.Args[1:], groups, metricsLn, log)
	upg.pidfile = o.pidfile
	var metricsSrv *metrics.Server
	if metricsLn != nil {
		metricsSrv = serveMetrics(metricsLn, groups, grd, upg, svc, log)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go grd.run(ctx, o.guardEvery)
	serveErr := make(chan error, len(groups))
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveErr <- g.Serve(ctx)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	code := exitOK
	handedOver := false
	if o.pidfile != "" {
		if err := writePidfile(o.pidfile, os.Getpid()); err != nil {
			log.Error("cannot write the pidfile; stopping", zap.String("pidfile", o.pidfile), zap.Error(err))
			code = exitRuntime
			// Started by an upgrade: the old process keeps the sockets.
			handedOver = inh != nil && !fromSystemd
		}
	}
	if code == exitOK && inh != nil { // without the ready signal, an upgrade's old process sees this one fail
		if fromSystemd {
			log.Info("serving the sockets systemd passed")
		} else {
			log.Info("serving the sockets of the previous process")
		}
		inh.signalReady()
	}
	if code == exitOK {
		ntf.send(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
	}

wait:
	for code == exitOK {
		select {
		case s := <-sig:
			switch s {
			case syscall.SIGINT, syscall.SIGTERM:
				log.Info("stopping", zap.String("signal", s.String()))
				// An upgrade under way shares our sockets with its new
				// process: learn how it ends before stopping, or the stop
				// would fence sockets that are no longer only ours.
				if pid, ok := upg.outcome(); ok {
					log.Info("the upgrade handed over before the stop; leaving the sockets to the new process", zap.Int("new_pid", pid))
					ntf.send(fmt.Sprintf("MAINPID=%d", pid))
					handedOver = true
					break wait
				}
				ntf.send("STOPPING=1")
				break wait
			case syscall.SIGUSR2:
				log.Info("upgrading", zap.String("signal", s.String()))
				upg.start()
			case syscall.SIGHUP:
				signalled(log, s, "reloaded", svc.Reload())
			case syscall.SIGUSR1:
				signalled(log, s, "reopened", svc.Reopen())
			}
		case pid := <-upg.handover:
			log.Info("upgrade handed over; this process finishes what it has and exits", zap.Int("new_pid", pid))
			ntf.send(fmt.Sprintf("MAINPID=%d", pid)) // systemd now follows the new process
			handedOver = true
			break wait
		case err := <-serveErr:
			if err != nil {
				log.Error("listener failed; stopping", zap.Error(err))
				code = exitRuntime
				break wait
			}
		}
	}

	sctx, scancel := context.WithTimeout(context.Background(), o.drain)
	defer scancel()
	var swg sync.WaitGroup
	var timedOut atomic.Bool
	for _, g := range groups {
		swg.Add(1)
		go func() {
			defer swg.Done()
			stop := g.Shutdown
			if handedOver {
				stop = g.Handoff // the sockets live on in the new process
			}
			if err := stop(sctx); err != nil {
				log.Warn("graceful stop timed out; sockets closed", zap.String("addr", g.Info().Addr), zap.Error(err))
				timedOut.Store(true)
			}
		}()
	}
	swg.Wait()
	if timedOut.Load() {
		code = exitRuntime
	}
	cancel()
	<-allDone
	// Every shard has stopped: nothing more is accepted, so the service can
	// finish what it holds (the syslog sink flushes its queue).
	fctx, fcancel := context.WithTimeout(context.Background(), o.drain+5*time.Second)
	if err := svc.Close(fctx); err != nil {
		log.Error("handler did not finish cleanly", zap.Error(err))
		code = exitRuntime
	}
	fcancel()
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	logSummary(log, groups)
	if o.pidfile != "" && !handedOver {
		removePidfile(o.pidfile, os.Getpid())
	}
	return code
}

func listenAll(o *options, log *zap.Logger, inh *inherited, upgrade bool, svc service) ([]*shard.Group, error) {
	var groups []*shard.Group
	for i, addr := range o.addrs {
		var files map[string]*os.File
		if inh != nil {
			files = inh.listeners[i]
		}
		cfg, _ := o.shardConfig(addr) // checked by parseArgs
		cfg.Inherit, cfg.Upgrade = files, upgrade
		cfg.Own = ownInodes(groups) // the ADDRs before this one are not foreign to it
		cfg.NewHandler = svc.NewHandler
		cfg.Logger = log.With(zap.String("addr", addr))
		g, err := shard.Listen(cfg)
		if err != nil {
			for _, g := range groups {
				_ = g.Close()
			}
			return nil, err
		}
		groups = append(groups, g)
	}
	return groups, nil
}

func tcpShapeField(in shard.Info) string {
	if !in.TCP {
		return "none"
	}
	return in.TCPShape.String()
}

// rcvbufConfig maps --rcvbuf to Config.RcvBuf: 0 on the command line keeps
// the kernel default.
func rcvbufConfig(b byteSize) int {
	if b == 0 {
		return shard.KernelDefault
	}
	return int(b)
}

func logListening(log *zap.Logger, in shard.Info, o *options) {
	cpus := "none"
	if in.CPUs != nil {
		cpus = strings.Trim(fmt.Sprint(in.CPUs), "[]")
	}
	log.Info("listening",
		zap.String("addr", in.Addr),
		zap.Stringer("bound", in.Bound),
		zap.String("proto", o.proto.value),
		zap.String("family", map[string]string{"udp": "ipv4+ipv6", "udp4": "ipv4", "udp6": "ipv6"}[in.Network]),
		zap.Int("shards", in.Shards),
		zap.String("pinned_cpus", cpus),
		zap.Int("batch", in.Batch),
		zap.Bool("batch_io", in.BatchIO),
		zap.Int("rcvbuf", in.RcvBuf),
		zap.Int("sndbuf", in.SndBuf),
		zap.Int("max_packet", in.MaxPacket),
		zap.Bool("reply_from_dst", in.PktInfo),
		zap.String("tcp_shape", tcpShapeField(in)),
		zap.Stringer("steer", in.Steer),
		zap.Bool("exclusive", in.Exclusive),
		zap.String("handler", o.handler.value),
	)
	// Linux reports twice the size set (half is bookkeeping overhead): a
	// value under twice the ask means the sysctl cap won.
	if in.RcvBufAsk > 0 && in.RcvBuf > 0 && in.RcvBuf < 2*in.RcvBufAsk {
		log.Warn("receive buffer is smaller than asked; bursts may be dropped",
			zap.String("addr", in.Addr), zap.Int("asked", in.RcvBufAsk), zap.Int("effective", in.RcvBuf),
			zap.String("fix", fmt.Sprintf("run as root (SO_RCVBUFFORCE) or raise the cap: sysctl -w net.core.rmem_max=%d", in.RcvBufAsk)))
	}
	if len(in.UnusedInherited) > 0 {
		log.Warn("inherited sockets no shard uses were closed (fewer shards or transports than the process that passed them)",
			zap.String("addr", in.Addr), zap.Strings("sockets", in.UnusedInherited))
	}
	if in.TCP && in.TCPSteerErr != nil {
		log.Warn("steering covers UDP only here: the kernel refused the program on the TCP listeners, so connections follow its hash and a later TCP listener of the same user gets a share (the guard reports it)",
			zap.String("addr", in.Addr), zap.Error(in.TCPSteerErr))
	}
	if in.UDP && !in.BatchIO {
		log.Warn("batched I/O unavailable on this platform: one datagram per system call", zap.String("addr", in.Addr))
	}
}

func logSummary(log *zap.Logger, groups []*shard.Group) {
	for _, g := range groups {
		for _, s := range g.Stats(nil) {
			fields := []zap.Field{zap.String("addr", s.Listener), zap.String("proto", s.Proto), zap.Int("shard", s.Shard)}
			if s.Proto == "tcp" {
				closed := map[string]uint64{}
				for r, n := range s.Closed {
					if n > 0 {
						closed[metrics.CloseReason(r).String()] = n
					}
				}
				log.Info("shard summary", append(fields,
					zap.Uint64("accepted", s.Accepted),
					zap.Any("closed", closed),
					zap.Uint64("rx_messages", s.RxPackets),
					zap.Uint64("rx_bytes", s.RxBytes),
					zap.Uint64("tx_messages", s.TxPackets),
					zap.Uint64("tx_bytes", s.TxBytes),
					zap.Uint64("handler_errors", s.HandlerErrors),
					zap.Uint64("discarded_bytes", s.DiscardedBytes),
					zap.Uint64("unsent_messages", s.UnsentPackets),
					zap.Uint64("unsent_bytes", s.UnsentBytes),
				)...)
				continue
			}
			log.Info("shard summary",
				zap.String("addr", s.Listener),
				zap.String("proto", s.Proto),
				zap.Int("shard", s.Shard),
				zap.Int("cpu", s.CPU),
				zap.Uint64("rx_packets", s.RxPackets),
				zap.Uint64("rx_bytes", s.RxBytes),
				zap.Uint64("tx_packets", s.TxPackets),
				zap.Uint64("tx_bytes", s.TxBytes),
				zap.Uint64("truncated", s.Truncated),
				zap.Uint64("handler_errors", s.HandlerErrors),
				zap.Uint64("send_errors", s.SendErrors),
				zap.Uint64("rx_errors", s.RxErrors),
				zap.Uint64("kernel_drops", s.KernelDrops),
			)
		}
	}
}

// groupsSource exposes every listener's shards to one collector.
type groupsSource []*shard.Group

func (gs groupsSource) Stats(dst []metrics.Snapshot) []metrics.Snapshot {
	for _, g := range gs {
		dst = g.Stats(dst)
	}
	return dst
}

func serveMetrics(ln net.Listener, groups []*shard.Group, grd *guard, upg *upgrader, svc service, log *zap.Logger) *metrics.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(svc.Collectors()...)
	for result, n := range upg.results {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "shardd_upgrades_total",
			Help:        "Binary upgrades this process started (SIGUSR2), by result: ok, failed, refused.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(n.Load()) }))
	}
	started := float64(time.Now().UnixNano()) / 1e9
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shardd_start_time_seconds",
		Help: "When this process started serving, in seconds since the epoch.",
	}, func() float64 { return started }))
	for i, g := range groups {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "shardd_foreign_sockets",
			Help:        "Sockets on the listener's port, not shardd's own, that can take its traffic (checked every --guard-interval).",
			ConstLabels: prometheus.Labels{"listener": g.Info().Addr},
		}, func() float64 { return float64(grd.counts[i].Load()) }))
	}
	reg.MustRegister(
		metrics.NewCollector(groupsSource(groups), metrics.ReadHostUDP),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "shardd_build_info",
			Help:        "Build information; the value is always 1.",
			ConstLabels: prometheus.Labels{"version": version(), "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "shardd_guard_errors_total",
		Help: "Guard passes (every --guard-interval) that could not look for foreign sockets, e.g. out of descriptors; logged once per episode.",
	}, func() float64 { return float64(grd.errors.Load()) }))
	srv := metrics.NewServer(ln, reg, metrics.DefaultLimits(), log)
	reg.MustRegister(srv)
	go func() {
		if err := srv.Serve(); err != nil {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	return srv
}

// signalled logs the outcome of a HUP or USR1.
func signalled(log *zap.Logger, s os.Signal, done string, err error) {
	var nothing nothingError
	switch {
	case errors.As(err, &nothing):
		log.Info("signal ignored", zap.String("signal", s.String()), zap.String("reason", err.Error()))
	case err != nil:
		log.Error("signal handling failed; the previous state keeps serving", append([]zap.Field{zap.String("signal", s.String()), zap.Error(err)}, fdlimit.Fields(err)...)...)
	default:
		log.Info(done, zap.String("signal", s.String()))
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
