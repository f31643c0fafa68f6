package shard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/shard/sockinfo"
)

// Info describes a listening group as the kernel set it up.
type Info struct {
	Addr      string         // as configured
	Bound     netip.AddrPort // the address bound (port 0 resolved)
	Network   string         // "udp" (dual-stack), "udp4" or "udp6"
	Shards    int
	CPUs      []int // CPU of each shard when pinned, else nil
	Batch     int
	MaxPacket int
	RcvBuf    int      // effective receive buffer of shard 0's socket, as getsockopt reports it
	SndBuf    int      // effective send buffer
	RcvBufAsk int      // what was asked for
	BatchIO   bool     // recvmmsg/sendmmsg in use
	TCPShape  TCPShape // how TCP connections are served
	Steer     Steer    // how datagrams are spread over the shards
	Exclusive bool     // a steering program keeps traffic on our own sockets
	// UnusedInherited names the inherited sockets no shard took (closed).
	UnusedInherited []string
	// TCPSteerErr is why the steering program could not be attached to the
	// TCP listeners (connections then follow the kernel's hash).
	TCPSteerErr error
	PktInfo     bool // replies leave from each datagram's own destination address
	GRO         bool // UDP_GRO is on: the kernel may hand over a flow's datagrams coalesced
	GSO         bool // replies to one client are grouped into UDP_SEGMENT sends (Config.GSO)
	UDP, TCP    bool // the transports served
	// TLS says the TCP listeners serve TLS (on the goroutine shape, which
	// TCPShape then is); their shards' snapshots have Proto "tls".
	TLS bool
}

// LockedThreads is how many OS threads the group's shards lock, each
// blocking in the kernel between batches: one per UDP shard, and one per
// TCP shard of the loop shape (the goroutine shape runs on Go's own).
func (in Info) LockedThreads() int {
	n := 0
	if in.UDP {
		n += in.Shards
	}
	if in.TCP && in.TCPShape == TCPShapeLoop {
		n += in.Shards
	}
	return n
}

// Group is the set of shards serving one address.
type Group struct {
	cfg    resolved
	info   Info
	shards []*shard    // UDP
	tcp    []*tcpShard // TCP, shard i beside shards[i]
	xdp    []*xdpIface // the --xdp interfaces (Config.XDP)

	mu        sync.Mutex
	served    bool
	closed    bool
	done      chan struct{} // closed when every shard goroutine has returned
	closeOnce sync.Once
}

// aLongTimeAgo is a read deadline in the past: it unblocks readers at once.
var aLongTimeAgo = time.Unix(1, 0)

// Listen binds one socket per shard and returns without reading from them:
// datagrams queue in the kernel until Serve. Usage errors are *ConfigError,
// bind failures *ListenError.
func Listen(cfg Config) (*Group, error) {
	r, err := cfg.resolve(DefaultShards())
	if err != nil {
		return nil, err
	}
	// Port 0 with UDP and TCP: the port the UDP socket got may be taken for
	// TCP (a client connection's local port); pick again a few times.
	for attempt := 0; ; attempt++ {
		g, err := listen(r)
		var le *ListenError
		if err != nil && r.addr.Port() == 0 && r.UDP && r.TCP && attempt < 8 &&
			errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		return g, err
	}
}

// listen binds the group's sockets in four steps (UDP, steering, TCP,
// inherited leftovers). Any error undoes everything bound so far: the one
// cleanup is deferred here, so no step closes the group's sockets itself.
func listen(r resolved) (g *Group, err error) {
	g = &Group{cfg: r, done: make(chan struct{})}
	cpus, err := pinnedCPUs(r)
	if err != nil {
		return nil, err
	}
	if err := checkInheritedOwners(r); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.closeSockets()
			g = nil
		}
	}()
	g.info = Info{
		Addr: r.Addr, Bound: r.addr, Network: r.network, Shards: r.Shards, CPUs: cpus,
		Batch: r.Batch, MaxPacket: r.MaxPacket, RcvBufAsk: r.RcvBuf, UDP: r.UDP, TCP: r.TCP, TCPShape: r.TCPShape,
		Steer: r.Steer, Exclusive: r.Exclusive, TLS: r.TLS != nil,
	}
	if r.UDP {
		if err := g.bindUDP(cpus); err != nil {
			return g, err
		}
	}
	if err := g.checkPortIsOurs(); err != nil {
		return g, err
	}
	if err := g.steerUDP(cpus); err != nil {
		return g, err
	}
	if err := g.attachXDP(); err != nil {
		return g, err
	}
	if r.TCP {
		if err := g.bindTCP(cpus); err != nil {
			return g, err
		}
		g.steerTCP(cpus)
	}
	g.closeUnusedInherited()
	return g, nil
}

// pinnedCPUs returns the CPU of each shard when Pin is set, else nil.
func pinnedCPUs(r resolved) ([]int, error) {
	if !r.Pin {
		return nil, nil
	}
	allowed, err := allowedCPUs()
	if err != nil {
		return nil, &ConfigError{"Pin", "", err.Error(), "run without Pin"}
	}
	if r.Shards > len(allowed) {
		return nil, &ConfigError{"Shards", strconv.Itoa(r.Shards),
			fmt.Sprintf("Pin needs one CPU per shard, and only %d are allowed (%v)", len(allowed), allowed),
			fmt.Sprintf("use Shards %d or fewer, or drop Pin", len(allowed))}
	}
	return allowed[:r.Shards], nil
}

// bindUDP binds (or adopts) one UDP socket per shard. The first one fixes
// the port (Info.Bound) when the address asked for port 0.
func (g *Group) bindUDP(cpus []int) error {
	r := &g.cfg
	pktinfo := r.addr.Addr().IsUnspecified()
	lc := net.ListenConfig{Control: control(r.network, pktinfo)}
	clearedReuseAddr := 0 // inherited UDP sockets that had SO_REUSEADDR on
	for i := 0; i < r.Shards; i++ {
		conn, cleared, err := g.udpSocket(i, &lc)
		if err == nil && i == 0 {
			conn, err = g.ownPort(conn, &lc)
		}
		if err != nil {
			return err
		}
		if cleared {
			clearedReuseAddr++
		}
		if i == 0 {
			// Port 0 picked a port: every other shard joins that one.
			g.info.Bound = netip.AddrPortFrom(g.info.Bound.Addr(), conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		}
		// Inherited sockets get the asked buffers too: the same value after an
		// upgrade, and RcvBuf wins over a systemd unit's ReceiveBuffer.
		s, rcv, snd, err := g.newUDPShard(i, conn, pktinfo)
		if err != nil {
			return err
		}
		if cpus != nil {
			s.cpu = cpus[i]
		}
		g.shards = append(g.shards, s)
		if i == 0 {
			g.info.RcvBuf, g.info.SndBuf = rcv, snd
			g.info.BatchIO = s.bc.batchIO()
			g.info.PktInfo = pktinfo && s.bc.batchIO()
			g.info.GRO = s.gro
			g.info.GSO = gsoOn(s.bc)
		}
	}
	for _, s := range g.shards {
		s.inode, _ = socketInode(s.rc)
	}
	if clearedReuseAddr > 0 {
		r.Logger.Info("turned SO_REUSEADDR off on inherited UDP sockets: with it a process of any user could bind the port and take its datagrams",
			zap.Int("sockets", clearedReuseAddr))
	}
	return nil
}

// ownPort makes sure the port the kernel picked for shard 0, when port 0
// was asked, is used by nothing else. With SO_REUSEPORT the kernel's pick
// skips only ports whose sockets would refuse to share (udp_lib_lport_inuse),
// so it may hand out a port another reuseport group of the same user holds,
// and the group would silently join it (seen as a test flake: "port still
// bound after Close"). Such a pick is dropped and the kernel asked again.
func (g *Group) ownPort(conn *net.UDPConn, lc *net.ListenConfig) (*net.UDPConn, error) {
	if g.cfg.addr.Port() != 0 || g.cfg.Inherit["udp/0"] != nil {
		return conn, nil
	}
	for attempt := 0; attempt < 16 && portShared(conn); attempt++ {
		_ = conn.Close()
		var err error
		if conn, _, err = g.udpSocket(0, lc); err != nil {
			return nil, err
		}
	}
	return conn, nil
}

// portShared says whether conn's port has UDP sockets other than conn (in
// the kernel's tables; never off Linux, where only one shard binds).
func portShared(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	own, ok := socketInode(rc)
	if !ok {
		return false
	}
	socks, _, err := sockinfo.Scan("udp", conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	if err != nil {
		return false
	}
	for _, s := range socks {
		if s.Inode != own {
			return true
		}
	}
	return false
}

// udpSocket binds shard i's UDP socket, or adopts the inherited "udp/i".
// An inherited socket has SO_REUSEADDR turned off; cleared says it was on.
func (g *Group) udpSocket(i int, lc *net.ListenConfig) (conn *net.UDPConn, cleared bool, err error) {
	r := &g.cfg
	var pc net.PacketConn
	f, inherited := r.Inherit[fmt.Sprintf("udp/%d", i)]
	if inherited {
		pc, err = net.FilePacketConn(f)
		_ = f.Close() // FilePacketConn holds its own duplicate
	} else {
		pc, err = lc.ListenPacket(context.Background(), r.network, g.info.Bound.String())
	}
	if err != nil {
		return nil, false, &ListenError{Addr: r.Addr, Shard: i, Err: err, Hint: bindHint(err, g.info.Bound.Port())}
	}
	defer func() {
		if err != nil {
			pc.Close()
		}
	}()
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, false, &ListenError{Addr: r.Addr, Shard: i, Err: fmt.Errorf("inherited socket udp/%d is not a UDP socket", i)}
	}
	if !inherited {
		return conn, false, nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	// systemd (and shardd before issue 12) binds with SO_REUSEADDR, which
	// lets any user's process bind the same UDP port and take its traffic:
	// turn it off (see control).
	if cleared, err = clearReuseAddr(rc); err != nil {
		return nil, false, &ListenError{Addr: r.Addr, Shard: i, Err: err}
	}
	return conn, cleared, nil
}

// newUDPShard sets conn's buffers and builds shard i around it; on error
// conn is closed. rcv and snd are the buffers the kernel granted.
func (g *Group) newUDPShard(i int, conn *net.UDPConn, pktinfo bool) (s *shard, rcv, snd int, err error) {
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, 0, 0, err
	}
	if rcv, snd, err = setBuffers(rc, g.cfg.RcvBuf, g.cfg.SndBuf); err != nil {
		return nil, 0, 0, &ListenError{Addr: g.cfg.Addr, Shard: i, Err: err}
	}
	s, err = newShard(i, &g.cfg, conn, pktinfo)
	return s, rcv, snd, err
}

// checkPortIsOurs refuses a port that already has other processes'
// sockets when a steering program or Exclusive is asked for: a program's
// indices follow the order sockets joined the group, and Exclusive promises
// the port is ours. An upgrade's sockets are ours already, and so are the
// sockets in Config.Own.
func (g *Group) checkPortIsOurs() error {
	r := &g.cfg
	if (r.Steer == SteerHash && !r.Exclusive) || r.Upgrade {
		return nil
	}
	if foreign, _, err := g.ForeignSockets(r.Own); err == nil && len(foreign) > 0 {
		return &ListenError{Addr: r.Addr, Err: fmt.Errorf("the port already has sockets of other processes: %s", sockinfo.Describe(foreign)),
			Hint: "steering and Exclusive need shardd's sockets to be the group's first; stop that process or use Steer hash without Exclusive"}
	}
	return nil
}

// steerUDP attaches the steering program to the UDP sockets' group.
// Inherited sockets keep the program the previous process attached.
func (g *Group) steerUDP(cpus []int) error {
	r := &g.cfg
	if r.Steer == SteerHash || !r.UDP || r.Upgrade {
		return nil
	}
	if r.Steer == SteerCPU && (cpus == nil || len(cpus) != r.Shards) {
		return &ConfigError{"Steer", "cpu", "needs one pinned shard per CPU", "use Pin with Shards equal to the CPUs allowed"}
	}
	prog, err := steerProgram(r.Steer, r.Shards, cpus)
	if err == nil {
		err = attachSteering(g.shards[0].rc, prog)
	}
	if err != nil {
		return &ListenError{Addr: r.Addr, Err: err, Hint: "the kernel must support SO_ATTACH_REUSEPORT_CBPF (Linux 4.5+); use Steer hash"}
	}
	return nil
}

// bindTCP binds (or adopts) one listener per shard on the UDP sockets'
// address and port: SO_REUSEPORT, plus SO_REUSEADDR so that a restart binds
// at once past TIME_WAIT.
func (g *Group) bindTCP(cpus []int) error {
	r := &g.cfg
	tcpNetwork := "tcp" + strings.TrimPrefix(r.network, "udp")
	lc := net.ListenConfig{Control: controlTCP}
	for i := 0; i < r.Shards; i++ {
		tl, err := g.tcpListener(i, &lc, tcpNetwork)
		if err != nil {
			return err
		}
		if i == 0 && g.info.Bound.Port() == 0 {
			g.info.Bound = netip.AddrPortFrom(g.info.Bound.Addr(), tl.Addr().(*net.TCPAddr).AddrPort().Port())
		}
		// Its own handler: the UDP loop calls the UDP one without a lock.
		t := newTCPShard(i, r, tl, r.NewHandler(i))
		if r.TCPShape == TCPShapeLoop {
			if cpus != nil {
				t.cpu = cpus[i]
			}
			if t.loop, err = newTCPLoop(t); err != nil {
				_ = tl.Close()
				return &ListenError{Addr: r.Addr, Shard: i, Err: err}
			}
		}
		g.tcp = append(g.tcp, t)
		if rc, err := tl.SyscallConn(); err == nil {
			t.inode, _ = socketInode(rc)
		}
	}
	return nil
}

// tcpListener binds shard i's TCP listener, or adopts the inherited "tcp/i".
func (g *Group) tcpListener(i int, lc *net.ListenConfig, network string) (*net.TCPListener, error) {
	r := &g.cfg
	var ln net.Listener
	var err error
	if f, ok := r.Inherit[fmt.Sprintf("tcp/%d", i)]; ok {
		ln, err = net.FileListener(f)
		_ = f.Close()
	} else {
		ln, err = lc.Listen(context.Background(), network, g.info.Bound.String())
	}
	if err != nil {
		return nil, &ListenError{Addr: r.Addr, Shard: i, Err: fmt.Errorf("tcp: %w", err), Hint: bindHint(err, g.info.Bound.Port())}
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, &ListenError{Addr: r.Addr, Shard: i, Err: fmt.Errorf("inherited socket tcp/%d is not a TCP listener", i)}
	}
	return tl, nil
}

// steerTCP makes the same choice for connections, where the kernel takes
// it: this one refuses reuseport programs on TCP listeners (EOPNOTSUPP), so
// it is best effort and Info.TCPSteerErr says whether it took.
func (g *Group) steerTCP(cpus []int) {
	r := &g.cfg
	if r.Steer == SteerHash || len(g.tcp) == 0 || r.Upgrade {
		return
	}
	prog, err := steerProgram(r.Steer, r.Shards, cpus)
	if err == nil {
		var rc syscall.RawConn
		if rc, err = g.tcp[0].ln.SyscallConn(); err == nil {
			err = attachSteering(rc, prog)
		}
	}
	g.info.TCPSteerErr = err
}

// closeUnusedInherited closes the inherited sockets no shard took (fewer
// shards than before, or a transport not served): they would stay in the
// reuseport group unread and take their share of the traffic. Info says so.
func (g *Group) closeUnusedInherited() {
	r := &g.cfg
	for name, f := range r.Inherit {
		var proto string
		var idx int
		if _, err := fmt.Sscanf(strings.Replace(name, "/", " ", 1), "%s %d", &proto, &idx); err == nil &&
			idx < r.Shards && ((proto == "udp" && r.UDP) || (proto == "tcp" && r.TCP)) {
			continue
		}
		if iface, ok := strings.CutPrefix(name, "xdp/"); ok && slices.Contains(r.XDP, iface) {
			continue // taken (and closed) by attachOrAdopt
		}
		_ = f.Close()
		g.info.UnusedInherited = append(g.info.UnusedInherited, name)
	}
}

// checkInheritedOwners refuses, before any bind, a group whose shards are
// partly inherited (systemd's sockets, bound as root) and partly bound here
// by a process of another uid: the kernel lets only one user's sockets
// share a port, so those binds would fail with "address in use".
func checkInheritedOwners(r resolved) error {
	euid := os.Geteuid()
	for _, proto := range []string{"udp", "tcp"} {
		if (proto == "udp" && !r.UDP) || (proto == "tcp" && !r.TCP) {
			continue
		}
		owner, passed, missing := -1, 0, -1
		for i := 0; i < r.Shards; i++ {
			f, ok := r.Inherit[fmt.Sprintf("%s/%d", proto, i)]
			if !ok {
				if missing < 0 {
					missing = i
				}
				continue
			}
			passed++
			if uid, ok := socketOwner(f); ok && uid != euid {
				owner = uid
			}
		}
		if missing < 0 || owner < 0 {
			continue
		}
		return &ListenError{Addr: r.Addr, Shard: missing,
			Err: fmt.Errorf("%d inherited %s socket(s) belong to uid %d, and this process (uid %d) must bind the other shards itself: the kernel lets only one user's sockets share a port",
				passed, proto, owner, euid),
			Hint: fmt.Sprintf("use Shards %d, pass one socket per shard, or run shardd as uid %d", passed, owner)}
	}
	return nil
}

// Addr returns the bound address (the real port when the configured one was 0).
func (g *Group) Addr() net.Addr { return net.UDPAddrFromAddrPort(g.info.Bound) }

// Info describes the group as bound.
func (g *Group) Info() Info { return g.info }

// Serve runs every shard on its own locked OS thread and blocks until the
// group stops. Cancelling ctx stops it gracefully, like Shutdown. It returns
// nil after a graceful stop, ErrGroupClosed after Close, or the first shard
// error (after stopping the others).
func (g *Group) Serve(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrGroupClosed
	}
	if g.served {
		g.mu.Unlock()
		return errors.New("shard: Serve called twice")
	}
	g.served = true
	g.mu.Unlock()

	errs := make(chan error, len(g.shards)+len(g.tcp))
	var wg sync.WaitGroup
	// Shard 0's socket closes last: with a steering program, the stop
	// points every datagram at slot 0 (see stop), and closing another slot
	// moves the group's last socket, perhaps a later joiner's, into it.
	var othersClosed sync.WaitGroup
	othersClosed.Add(max(len(g.shards)-1, 0))
	for _, s := range g.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.run()
			if s.id == 0 {
				// Report first: an early error must reach Serve, which then
				// stops the others, before this waits for them to close.
				errs <- err
				othersClosed.Wait()
				_ = s.close()
				s.closeXDP() // here: the loop that reads its rings has returned
				return
			}
			_ = s.close()
			s.closeXDP()
			othersClosed.Done()
			errs <- err
		}()
	}
	for _, t := range g.tcp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- t.run()
		}()
	}
	go func() {
		wg.Wait()
		close(g.done)
	}()

	var first error
	ctxDone := ctx.Done()
	for remaining := len(g.shards) + len(g.tcp); remaining > 0; {
		select {
		case err := <-errs:
			remaining--
			if err != nil && first == nil {
				first = err
				g.stop() // one shard failed: stop the others too
			}
		case <-ctxDone:
			ctxDone = nil
			g.stop()
		}
	}
	<-g.done
	return first
}

// stop asks every shard to finish: the drop-all filter fences each socket's
// queue, the past read deadline wakes blocked readers, and the stopping flag
// turns the wake-up into drain and return.
func (g *Group) stop() {
	g.detachXDP() // the interfaces' datagrams go to the UDP sockets, fenced below
	if g.info.Steer != SteerHash && len(g.shards) > 0 && !g.shards[0].handoff.Load() && !g.shards[0].stopping.Load() {
		// Sockets are about to leave the group one by one, and each leaving
		// moves the last socket into its slot: point every index-based
		// choice at slot 0, which closes last, so a later joiner never gets
		// picked while we stop. Slot 0 is fenced below: what arrives now is
		// a counted drop.
		if err := attachSteering(g.shards[0].rc, slotZeroProgram()); err != nil {
			g.shards[0].log.Warn("cannot pin steering to one slot for the stop", zap.Error(err))
		}
	}
	for _, s := range g.shards {
		// Never fence a socket handed to another process: it is theirs now.
		if !s.stopping.Swap(true) && !s.handoff.Load() {
			if err := attachDropAll(s.rc); err != nil {
				s.log.Warn("cannot fence the socket for a graceful stop; datagrams arriving during the drain may be lost uncounted", zap.Error(err))
			}
		}
		_ = s.bc.setReadDeadline(aLongTimeAgo)
	}
	for _, t := range g.tcp {
		t.stop()
	}
}

// Shutdown stops reading, serves what the shards have in hand and in their
// socket queues, sends the replies and closes the sockets. If ctx ends first
// it closes them at once and returns ctx.Err(). On a group that is not
// serving yet it is Close (a later Serve returns ErrGroupClosed, as
// net/http's servers do). Safe to call more than once.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	served := g.served
	g.mu.Unlock()
	if !served {
		return g.Close()
	}
	g.stop()
	return g.wait(ctx)
}

// wait waits for every shard to return; past ctx it closes everything.
func (g *Group) wait(ctx context.Context) error {
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		_ = g.Close()
		<-g.done
		return ctx.Err()
	}
}

// closeWait bounds how long Close waits for the shards to leave.
const closeWait = 30 * time.Second

// Close closes every socket at once; Serve then returns ErrGroupClosed.
// Datagrams still queued are lost (and were already received by the kernel).
// Idempotent.
func (g *Group) Close() error {
	g.mu.Lock()
	g.closed = true
	served := g.served
	g.mu.Unlock()
	g.closeSockets()
	if served {
		// The shards leave their waits at once (closeSockets interrupts
		// them), and only then are the sockets really closed: wait, so the
		// port is free and no handler runs once Close returns. The bound
		// only guards against a handler that blocks, which it must not; it
		// is long because a loaded machine can keep a runnable thread off
		// the CPU for more than a second (a 1 s bound failed under load).
		select {
		case <-g.done:
		case <-time.After(closeWait):
		}
	}
	return nil
}

func (g *Group) closeSockets() {
	g.closeOnce.Do(func() {
		g.detachXDP()
		g.mu.Lock()
		served := g.served
		g.mu.Unlock()
		for _, s := range g.shards {
			_ = s.close()
			if !served {
				s.closeXDP() // served: the shard's goroutine closes them once its loop returned
			}
		}
		for _, t := range g.tcp {
			t.closeAll(served)
		}
	})
}

// Stats appends one snapshot per shard to dst. Safe for concurrent use, also
// after the group stopped (the counters then hold their final values).
func (g *Group) Stats(dst []metrics.Snapshot) []metrics.Snapshot {
	for _, s := range g.shards {
		snap := s.snapshot()
		snap.Listener = g.info.Addr
		snap.Proto = "udp"
		dst = append(dst, snap)
		dst = s.xdpSnapshots(dst, g.info.Addr)
	}
	for _, t := range g.tcp {
		snap := t.snapshot()
		snap.Listener = g.info.Addr
		snap.Proto = "tcp"
		if g.info.TLS {
			snap.Proto = "tls"
		}
		dst = append(dst, snap)
	}
	return dst
}

var _ metrics.Source = (*Group)(nil)

// Files returns a duplicate of every socket of the group, by the names
// Config.Inherit takes ("udp/N", "tcp/N"), for handing over to a new
// process. The caller closes them.
func (g *Group) Files() (map[string]*os.File, error) {
	files := map[string]*os.File{}
	fail := func(err error) (map[string]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for _, s := range g.shards {
		f, err := socketFile(s.sock)
		if err != nil {
			return fail(err)
		}
		files[fmt.Sprintf("udp/%d", s.id)] = f
	}
	for _, t := range g.tcp {
		f, err := t.ln.File()
		if err != nil {
			return fail(err)
		}
		files[fmt.Sprintf("tcp/%d", t.id)] = f
	}
	if err := g.xdpFiles(files); err != nil {
		return fail(err)
	}
	return files, nil
}

// Handoff stops the group after its sockets were handed to another process
// (Files): the shards stop reading and close their descriptors, but do not
// fence or drain the UDP queues, which the new process now reads; TCP
// listeners close here (the new process accepts) and open connections finish
// as in Shutdown. If ctx ends first it cuts them and returns ctx.Err().
func (g *Group) Handoff(ctx context.Context) error {
	for _, s := range g.shards {
		s.handoff.Store(true) // stop then neither fences nor re-steers
	}
	g.stop()
	g.mu.Lock()
	served := g.served
	g.mu.Unlock()
	if !served {
		return g.Close()
	}
	return g.wait(ctx)
}
