package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/metrics/fdlimit"
	"github.com/shardd/shardd/shard"
)

// server is one run of shardd serving its addresses, in three phases:
// startServer binds everything (or fails with one line and nothing bound),
// serve runs until a stop, a hand-over or a failure, and stop finishes
// what was accepted and releases it all.
type server struct {
	o   *options
	log *zap.Logger
	sig <-chan os.Signal
	ntf *notifier

	// Bound by startServer.
	inh         *inherited // sockets handed over by an upgrade or by systemd
	fromSystemd bool       // inh came from systemd, not from an upgrade
	svc         service
	metricsLn   net.Listener
	groups      []*shard.Group
	tls         *tlsState // the --tls pair, client CAs and ticket keys; nil without --tls

	// Running from serve on.
	grd        *guard
	upg        *upgrader
	metricsSrv *metrics.Server
	cancel     context.CancelFunc // ends the guard and the shards' Serve
	allDone    chan struct{}      // closed when every Serve returned
	handedOver bool               // the sockets live on in a new process
}

// startServer takes the sockets passed in, checks the pidfile, builds the
// handler's service and binds the metrics listener and the shards; then it
// logs what listens. On error what it bound and built is closed again, and
// the error is one line: a *usageError for settings the flags describe
// (exit 2), anything else a runtime failure (exit 1).
func startServer(o *options, log *zap.Logger, sig <-chan os.Signal) (_ *server, err error) {
	srv := &server{o: o, log: log, sig: sig}
	if srv.inh, srv.fromSystemd, err = takeSockets(o.allAddrs(), log); err != nil {
		return nil, err
	}
	// A pidfile that cannot be written safely stops the start: checked
	// here, before anything binds, so the failure is one line.
	if o.pidfile != "" {
		if err := checkPidfile(o.pidfile); err != nil {
			return nil, err
		}
	}
	srv.ntf = newNotifier()
	if srv.tls, err = loadTLS(o, log, srv.inh); err != nil {
		return nil, err
	}
	if srv.svc, err = handlerNamed(o.handler.value).newService(o, log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // the one cleanup of what was bound so far
			if srv.metricsLn != nil {
				_ = srv.metricsLn.Close()
			}
			_ = srv.svc.Close(context.Background())
		}
	}()
	// Bind everything before logging that anything listens: a start-up
	// failure leaves one line on stderr and nothing else.
	if srv.metricsLn, err = srv.listenMetrics(); err != nil {
		return nil, err
	}
	if srv.groups, err = listenAll(o, log, srv.inh, srv.inh != nil && !srv.fromSystemd, srv.svc, srv.tls.config()); err != nil {
		var ce *shard.ConfigError
		if errors.As(err, &ce) {
			return nil, flagError(ce, nil)
		}
		return nil, listenErrorInFlags(err)
	}
	for _, g := range srv.groups {
		logListening(log, g.Info(), o)
	}
	reserveProcs(srv.groups, log)
	return srv, nil
}

// takeSockets returns the sockets handed over by an upgrade (if this
// process is the new one) or else passed by systemd socket activation;
// activated sockets no ADDR asks for are closed.
func takeSockets(addrs []string, log *zap.Logger) (*inherited, bool, error) {
	inh, err := takeInherited()
	if err != nil || inh != nil {
		return inh, false, err
	}
	act, err := takeActivated()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	if len(act) == 0 {
		return nil, false, nil
	}
	inh, unused := assignActivated(act, addrs)
	for _, u := range unused {
		log.Warn("systemd passed a socket no ADDR asks for; closing it", zap.String("proto", u.proto), zap.Stringer("local", u.local))
		_ = u.file.Close()
	}
	return inh, true, nil
}

// listenMetrics returns the --metrics listener: the previous process's
// after an upgrade, else a new one; nil without --metrics.
func (srv *server) listenMetrics() (net.Listener, error) {
	addr := srv.o.metrics
	if addr == "" {
		if srv.inh != nil && srv.inh.metrics != nil {
			_ = srv.inh.metrics.Close() // handed over but no longer asked for
		}
		return nil, nil
	}
	if srv.inh != nil && srv.inh.metrics != nil {
		ln, err := net.FileListener(srv.inh.metrics)
		if err != nil {
			return nil, fmt.Errorf("inherited metrics listener: %w", err)
		}
		_ = srv.inh.metrics.Close()
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot serve metrics on %s: %v (pick a free address for --metrics, e.g. 127.0.0.1:9153)", addr, err)
	}
	return ln, nil
}

// serve starts the guard, the upgrader, the metrics server and the shards,
// reports that it serves, and then waits for a signal to act on. It returns
// when shardd is to stop: exitOK, or exitRuntime after a failure.
func (srv *server) serve() int {
	exe, _ := os.Executable()
	srv.grd = newGuard(srv.groups, srv.log)
	srv.grd.check()
	srv.upg = newUpgrader(exe, os.Args[1:], srv.groups, srv.metricsLn, srv.log)
	srv.upg.pidfile = srv.o.pidfile
	srv.upg.tickets = srv.tls.ticketKeys()
	if srv.metricsLn != nil {
		srv.metricsSrv = serveMetrics(srv.metricsLn, srv.groups, srv.grd, srv.upg, srv.svc, srv.log, certCollectors(srv.tls)...)
	}

	ctx, cancel := context.WithCancel(context.Background())
	srv.cancel = cancel
	go srv.grd.run(ctx, srv.o.guardEvery)
	srv.tls.run(srv.o, srv.log, ctx.Done())
	serveErr := make(chan error, len(srv.groups))
	var wg sync.WaitGroup
	for _, g := range srv.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveErr <- g.Serve(ctx)
		}()
	}
	srv.allDone = make(chan struct{})
	go func() { wg.Wait(); close(srv.allDone) }()

	if !srv.ready() {
		return exitRuntime
	}
	return srv.wait(serveErr)
}

// ready writes the pidfile and tells whoever started this process (the
// previous process of an upgrade, systemd) that it serves. A pidfile that
// cannot be written stops shardd.
func (srv *server) ready() bool {
	if srv.o.pidfile != "" {
		if err := writePidfile(srv.o.pidfile, os.Getpid()); err != nil {
			srv.log.Error("cannot write the pidfile; stopping", zap.String("pidfile", srv.o.pidfile), zap.Error(err))
			// Started by an upgrade: the old process keeps the sockets.
			srv.handedOver = srv.inh != nil && !srv.fromSystemd
			return false
		}
	}
	if srv.inh != nil { // without the ready signal, an upgrade's old process sees this one fail
		if srv.fromSystemd {
			srv.log.Info("serving the sockets systemd passed")
		} else {
			srv.log.Info("serving the sockets of the previous process")
		}
		srv.inh.signalReady()
	}
	srv.ntf.send(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
	return true
}

// wait acts on signals until one stops shardd, an upgrade hands over, or a
// listener fails.
func (srv *server) wait(serveErr <-chan error) int {
	for {
		select {
		case s := <-srv.sig:
			if srv.signal(s) {
				return exitOK
			}
		case pid := <-srv.upg.handover:
			srv.log.Info("upgrade handed over; this process finishes what it has and exits", zap.Int("new_pid", pid))
			srv.ntf.send(fmt.Sprintf("MAINPID=%d", pid)) // systemd now follows the new process
			srv.handedOver = true
			return exitOK
		case err := <-serveErr:
			if err != nil {
				srv.log.Error("listener failed; stopping", zap.Error(err))
				return exitRuntime
			}
		}
	}
}

// signal acts on one signal: TERM/INT stop (it returns true), USR2
// upgrades, HUP reloads, USR1 reopens.
func (srv *server) signal(s os.Signal) (stop bool) {
	switch s {
	case syscall.SIGINT, syscall.SIGTERM:
		srv.log.Info("stopping", zap.String("signal", s.String()))
		// An upgrade under way shares our sockets with its new process:
		// learn how it ends before stopping, or the stop would fence
		// sockets that are no longer only ours.
		if pid, ok := srv.upg.outcome(); ok {
			srv.log.Info("the upgrade handed over before the stop; leaving the sockets to the new process", zap.Int("new_pid", pid))
			srv.ntf.send(fmt.Sprintf("MAINPID=%d", pid))
			srv.handedOver = true
			return true
		}
		srv.ntf.send("STOPPING=1")
		return true
	case sigUSR2:
		srv.log.Info("upgrading", zap.String("signal", s.String()))
		srv.upg.start()
	case syscall.SIGHUP:
		srv.tls.reload(srv.log)
		signalled(srv.log, s, "reloaded", srv.svc.Reload())
	case sigUSR1:
		signalled(srv.log, s, "reopened", srv.svc.Reopen())
	}
	return false
}

// stop drains the shards (or hands their sockets over), lets the service
// finish what it holds, closes the metrics server, logs each shard's
// summary and removes the pidfile. It returns code, or exitRuntime if
// anything did not finish cleanly.
func (srv *server) stop(code int) int {
	if !srv.drain() {
		code = exitRuntime
	}
	srv.cancel()
	<-srv.allDone
	// Every shard has stopped: nothing more is accepted, so the service can
	// finish what it holds (the syslog sink flushes its queue).
	fctx, fcancel := context.WithTimeout(context.Background(), srv.o.drain+5*time.Second)
	if err := srv.svc.Close(fctx); err != nil {
		srv.log.Error("handler did not finish cleanly", zap.Error(err))
		code = exitRuntime
	}
	fcancel()
	if srv.metricsSrv != nil {
		_ = srv.metricsSrv.Close()
	}
	logSummary(srv.log, srv.groups)
	if srv.o.pidfile != "" && !srv.handedOver {
		removePidfile(srv.o.pidfile, os.Getpid())
	}
	return code
}

// drain stops every listener within --drain-timeout, all at once: a
// graceful Shutdown, or a Handoff when the sockets live on in a new
// process. It reports whether all of them finished in time.
func (srv *server) drain() bool {
	ctx, cancel := context.WithTimeout(context.Background(), srv.o.drain)
	defer cancel()
	var wg sync.WaitGroup
	var timedOut atomic.Bool
	for _, g := range srv.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := g.Shutdown
			if srv.handedOver {
				stop = g.Handoff // the sockets live on in the new process
			}
			if err := stop(ctx); err != nil {
				srv.log.Warn("graceful stop timed out; sockets closed", zap.String("addr", g.Info().Addr), zap.Error(err))
				timedOut.Store(true)
			}
		}()
	}
	wg.Wait()
	return !timedOut.Load()
}

func listenAll(o *options, log *zap.Logger, inh *inherited, upgrade bool, svc service, tlsConf *tls.Config) ([]*shard.Group, error) {
	var groups []*shard.Group
	for i, addr := range o.allAddrs() {
		var files map[string]*os.File
		if inh != nil {
			files = inh.listeners[i]
		}
		cfg, _ := o.shardConfig(addr) // checked by parseArgs
		if i >= len(o.addrs) {
			o.tlsShardConfig(&cfg, tlsConf)
		}
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
	if in.TLS {
		return in.TCPShape.String() + " (TLS runs on goroutines)"
	}
	return in.TCPShape.String()
}

func logListening(log *zap.Logger, in shard.Info, o *options) {
	cpus := "none"
	if in.CPUs != nil {
		cpus = strings.Trim(fmt.Sprint(in.CPUs), "[]")
	}
	log.Info("listening",
		zap.String("addr", in.Addr),
		zap.Stringer("bound", in.Bound),
		zap.String("proto", protoField(in, o)),
		zap.String("family", map[string]string{"udp": "ipv4+ipv6", "udp4": "ipv4", "udp6": "ipv6"}[in.Network]),
		zap.Int("shards", in.Shards),
		zap.String("pinned_cpus", cpus),
		zap.Int("batch", in.Batch),
		zap.Bool("batch_io", in.BatchIO),
		zap.Int("rcvbuf", in.RcvBuf),
		zap.Int("sndbuf", in.SndBuf),
		zap.Int("max_packet", in.MaxPacket),
		zap.Bool("reply_from_dst", in.PktInfo),
		zap.Bool("gro", in.GRO),
		zap.Bool("gso", in.GSO),
		zap.String("tcp_shape", tcpShapeField(in)),
		zap.Stringer("steer", in.Steer),
		zap.Bool("exclusive", in.Exclusive),
		zap.String("handler", o.handler.value),
	)
	warnSmallRcvBuf(log, in)
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

// logSummary logs each shard's counters once, at exit.
func logSummary(log *zap.Logger, groups []*shard.Group) {
	for _, g := range groups {
		for _, s := range g.Stats(nil) {
			log.Info("shard summary", summaryFields(s)...)
		}
	}
}

// summaryFields are one shard's counters: a TCP shard counts connections
// and messages, a UDP shard datagrams ("packets").
func summaryFields(s metrics.Snapshot) []zap.Field {
	fields := []zap.Field{zap.String("addr", s.Listener), zap.String("proto", s.Proto), zap.Int("shard", s.Shard)}
	if s.Proto == "tcp" || s.Proto == "tls" { // udp and xdp count datagrams
		closed := map[string]uint64{}
		for r, n := range s.Closed {
			if n > 0 {
				closed[metrics.CloseReason(r).String()] = n
			}
		}
		fields = append(fields, zap.Uint64("accepted", s.Accepted), zap.Any("closed", closed))
		fields = append(fields, trafficFields(s, "messages")...)
		fields = append(fields, tlsSummaryFields(s)...)
		return append(fields, zap.Uint64("handler_errors", s.HandlerErrors), zap.Uint64("discarded_bytes", s.DiscardedBytes),
			zap.Uint64("unsent_messages", s.UnsentPackets), zap.Uint64("unsent_bytes", s.UnsentBytes))
	}
	fields = append(fields, zap.Int("cpu", s.CPU))
	fields = append(fields, trafficFields(s, "packets")...)
	return append(fields, zap.Uint64("truncated", s.Truncated), zap.Uint64("handler_errors", s.HandlerErrors),
		zap.Uint64("send_errors", s.SendErrors), zap.Uint64("rx_errors", s.RxErrors), zap.Uint64("kernel_drops", s.KernelDrops))
}

// trafficFields are what a shard received and sent, counted in unit and
// in bytes.
func trafficFields(s metrics.Snapshot, unit string) []zap.Field {
	return []zap.Field{
		zap.Uint64("rx_"+unit, s.RxPackets), zap.Uint64("rx_bytes", s.RxBytes),
		zap.Uint64("tx_"+unit, s.TxPackets), zap.Uint64("tx_bytes", s.TxBytes),
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

func serveMetrics(ln net.Listener, groups []*shard.Group, grd *guard, upg *upgrader, svc service, log *zap.Logger, extra ...prometheus.Collector) *metrics.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(svc.Collectors()...)
	reg.MustRegister(extra...)
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
