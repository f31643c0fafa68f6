package shard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/shard/internal/xdp"
)

// xdpIface is one --xdp interface of a group: its program and how many of
// the shards got a socket on it.
type xdpIface struct {
	name     string
	ifindex  int
	mtu      int
	prog     *xdp.Program
	sockets  int
	zeroCopy bool
	closed   atomic.Bool
}

// xdpPort is one shard's AF_XDP socket on one interface, with the counters
// of what it served (published as the shard's "xdp" snapshot).
type xdpPort struct {
	iface  *xdpIface
	queue  int
	sock   *xdp.Socket
	ready  atomic.Bool // sock is bound and registered (an upgrade's may wait for the old process to let go)
	failed bool        // its late bind failed: the queue stays with the UDP socket
	counts metrics.Counts
	ctr    metrics.Shard
	req    xdp.Header   // the frame being served
	hdrs   []xdp.Header // the request of each queued reply, by index
	final  atomic.Pointer[metrics.XDPStats]
}

// xdpHint says what a start-up failure of the XDP path needs. (Hints name
// Config fields by name, which a program may translate: the word XDP
// alone is left out.)
func xdpHint(err error) string {
	switch {
	case errors.Is(err, errNoInterface):
		return "check the name with `ip link` (in this network namespace)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return "AF_XDP needs root, or CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW"
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return "the interface has another eBPF program attached already (another shardd, or Knot DNS, which leaves its own attached): see `ip link show`, and detach it with `ip link set dev IFACE xdp off` if it is not in use"
	}
	return "AF_XDP needs a kernel with AF_XDP sockets (Linux 5.4+) and an interface that runs eBPF programs at its driver or in generic mode; run without it otherwise"
}

var errNoInterface = errors.New("no such network interface")

// attachXDP sets up every --xdp interface: the program with the group's
// address, shard i's socket on queue i, then the attach (so the program
// never redirects to a queue whose socket is not there yet: such a
// datagram passes to the kernel). An interface with fewer queues than
// shards gives sockets to the first shards only; the other shards serve
// the UDP socket alone, and datagrams on queues beyond the shards pass to
// the kernel (the UDP sockets).
func (g *Group) attachXDP() error {
	r := &g.cfg
	if len(r.XDP) == 0 {
		return nil
	}
	for _, s := range g.shards {
		if _, ok := s.bc.(*mmsgConn); !ok {
			return &ListenError{Addr: r.Addr, Shard: s.id, Err: errors.New("AF_XDP needs the batched socket path (recvmmsg)")}
		}
	}
	for _, name := range r.XDP {
		x, err := g.openXDP(name)
		if err != nil {
			return &ListenError{Addr: r.Addr + "@" + name, Err: err, Hint: xdpHint(err)}
		}
		g.xdp = append(g.xdp, x)
		mode := "copy"
		if x.zeroCopy {
			mode = "zero-copy"
		}
		r.Logger.Info("XDP program attached", zap.String("iface", name), zap.Uint32("program", x.prog.ID()),
			zap.String("attach", x.prog.Mode()), zap.Bool("device_bound", x.prog.DeviceBound()), zap.String("mode", mode),
			zap.Int("sockets", x.sockets), zap.Int("shards", len(g.shards)))
		if xdp.StripsVLANTags(name) {
			r.Logger.Warn("rx VLAN offload is on: 802.1Q-tagged datagrams reach the XDP program without their tag, and are left to the UDP sockets (device-bound program) or answered untagged; turn it off to serve VLANs over XDP",
				zap.String("iface", name), zap.Bool("device_bound", x.prog.DeviceBound()), zap.String("fix", "ethtool -K "+name+" rxvlan off"))
		}
		if x.sockets < len(g.shards) {
			r.Logger.Warn("the interface has fewer receive queues than shards: the shards past them serve the UDP socket only",
				zap.String("iface", name), zap.Int("queues", x.sockets), zap.Int("shards", len(g.shards)))
		}
	}
	return nil
}

// openXDP loads the program for one interface, opens the shards' sockets
// on its queues and attaches it.
func (g *Group) openXDP(name string) (*xdpIface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, errNoInterface)
	}
	x := &xdpIface{name: name, ifindex: ifi.Index, mtu: ifi.MTU}
	if x.prog, err = xdp.NewProgram(len(g.shards)); err != nil {
		return nil, err
	}
	_, adopt := g.cfg.Inherit["xdp/"+name]
	err = x.prog.AddListener(g.info.Bound, g.cfg.network == "udp")
	switch {
	case err == nil && adopt:
		// The previous process still holds the queues' sockets: swap the
		// program in first (its socket map is empty, so everything passes
		// to the UDP sockets, which both processes share), then each shard
		// binds its queue once the previous process let go (pendingXDP).
		if err = g.attachOrAdopt(x); err == nil {
			err = g.openXDPSockets(x, true)
		}
	case err == nil:
		if err = g.openXDPSockets(x, false); err == nil {
			err = g.attachOrAdopt(x)
		}
	}
	if err != nil {
		x.close()
		g.closeXDPPorts(x)
		return nil, err
	}
	return x, nil
}

// attachOrAdopt attaches x's program, or, in an upgrade that handed over
// the interface's attachment ("xdp/IFACE" in Config.Inherit), swaps it into
// that one: no moment without a program, so no datagram reaches the
// kernel's stack (or no socket) on the way.
func (g *Group) attachOrAdopt(x *xdpIface) error {
	f, ok := g.cfg.Inherit["xdp/"+x.name]
	if !ok {
		return x.prog.Attach(x.ifindex)
	}
	if err := x.prog.Adopt(f); err != nil {
		g.cfg.Logger.Warn("cannot take over the previous process's XDP attachment; attaching anew", zap.String("iface", x.name), zap.Error(err))
		return x.prog.Attach(x.ifindex)
	}
	return nil
}

// xdpFiles adds a duplicate of each interface's attachment to files, as
// "xdp/IFACE", for an upgrade (Files).
func (g *Group) xdpFiles(files map[string]*os.File) error {
	for _, x := range g.xdp {
		name := "xdp/" + x.name
		f, err := x.prog.LinkFile(name)
		if err != nil {
			return err
		}
		files[name] = f
	}
	return nil
}

// openXDPSockets opens shard i's socket on queue i, up to the interface's
// queues (a bind past them fails with EINVAL). With busyOK a queue still
// bound by the previous process (EBUSY) is left pending: the shard binds it
// later (pendingXDP).
func (g *Group) openXDPSockets(x *xdpIface, busyOK bool) error {
	for i, s := range g.shards {
		sock, err := xdp.Open(x.ifindex, i, xdp.Options{})
		if err != nil && busyOK && errors.Is(err, unix.EBUSY) {
			// Created here, in the interface's namespace; bound later.
			sock, err = xdp.Open(x.ifindex, i, xdp.Options{NoBind: true})
			if err != nil {
				return err
			}
			s.xdp = append(s.xdp, &xdpPort{iface: x, queue: i, sock: sock, hdrs: make([]xdp.Header, g.cfg.Batch)})
			x.sockets++
			continue
		}
		switch {
		case err != nil && i > 0 && errors.Is(err, unix.EINVAL):
			return nil // no queue i
		case err != nil:
			return err
		}
		p := &xdpPort{iface: x, queue: i, sock: sock, hdrs: make([]xdp.Header, g.cfg.Batch)}
		s.xdp = append(s.xdp, p)
		x.sockets++
		x.zeroCopy = sock.ZeroCopy() // at Listen only: the shards share x
		if err := p.register(); err != nil {
			return err
		}
	}
	return nil
}

// register puts p's bound socket in the program's socket map.
func (p *xdpPort) register() error {
	p.ready.Store(true)
	return p.iface.prog.SetSocket(p.queue, p.sock)
}

// pendingXDP binds the queues still held by the previous process when it
// let go of them (an upgrade), at most once per rxWait; meanwhile their
// datagrams go to the UDP sockets. It reports whether some are pending.
func (s *shard) pendingXDP(m *mmsgConn) bool {
	pending := false
	for i, p := range s.xdp {
		if p.ready.Load() || p.failed || p.iface.closed.Load() {
			continue
		}
		err := p.sock.Bind()
		if err == nil {
			err = p.register()
		}
		switch {
		case err == nil:
			m.pollFds[1+i] = unix.PollFd{Fd: int32(p.sock.FD()), Events: unix.POLLIN}
			s.log.Info("AF_XDP socket bound after the upgrade", zap.String("iface", p.iface.name), zap.Int("queue", p.queue))
		case errors.Is(err, unix.EBUSY):
			pending = true
		default:
			s.logOnce(err, "cannot bind the AF_XDP socket after the upgrade; this queue's datagrams go to the UDP socket")
			p.failed = true
		}
	}
	return pending
}

// closeXDPPorts closes the shards' sockets on x (a failed start).
func (g *Group) closeXDPPorts(x *xdpIface) {
	for _, s := range g.shards {
		for i, p := range s.xdp {
			if p.iface == x {
				_ = p.sock.Close()
				s.xdp = append(s.xdp[:i], s.xdp[i+1:]...)
				break
			}
		}
	}
}

// detachXDP detaches every program of the group: from then on the
// interfaces' datagrams go to the kernel (the UDP sockets) again.
func (g *Group) detachXDP() {
	for _, x := range g.xdp {
		x.close()
	}
}

func (x *xdpIface) close() {
	if !x.closed.Swap(true) {
		_ = x.prog.Close()
	}
}

// runXDP is run's loop for a shard with AF_XDP sockets: one poll(2) over
// the UDP socket and the AF_XDP sockets, bounded by rxWait, then each ring
// served without blocking. poll rather than a busy loop: an idle shard
// sleeps (a busy loop would burn one CPU per shard, and this daemon shares
// its CPUs), and a loaded one finds its rings non-empty and polls without
// sleeping. After a batch, the shard yields its CPU a few times before it
// polls again (framesSoon), and skips the poll when frames came meanwhile,
// at most xdpMaxSkips times in a row, so that the UDP socket and a stop
// are still seen.
func (s *shard) runXDP() error {
	m := s.bc.(*mmsgConn)
	pending := s.xdpPollFds(m)
	var tried time.Time
	skips := 0
	for {
		if pending && time.Since(tried) >= rxWait {
			tried = time.Now()
			pending = s.pendingXDP(m)
		}
		udp := false
		if skips == 0 || skips >= xdpMaxSkips {
			skips = 0
			var err error
			if udp, err = m.pollWait(); err != nil {
				if done, ret := s.readFailed(err); done {
					return ret
				}
				continue
			}
		}
		served := 0
		for _, p := range s.xdp {
			served += s.serveXDP(p)
		}
		s.yield.maybe(time.Now())
		if udp {
			if n, err := m.drainBatch(s.msgs); err != nil {
				s.rxError(err)
			} else if n > 0 {
				s.serveBatch(n)
			}
		}
		if served > 0 && s.framesSoon() {
			skips++
		} else {
			skips = 0
		}
	}
}

// xdpPollFds builds the shard's poll set: the UDP socket (filled in by
// poll) and each AF_XDP socket, left out until bound; it reports whether
// some are not bound yet (an upgrade's).
func (s *shard) xdpPollFds(m *mmsgConn) (pending bool) {
	m.pollFds = make([]unix.PollFd, 1+len(s.xdp))
	for i, p := range s.xdp {
		m.pollFds[1+i] = unix.PollFd{Fd: -1} // poll skips it until bound
		if p.ready.Load() {
			m.pollFds[1+i] = unix.PollFd{Fd: int32(p.sock.FD()), Events: unix.POLLIN}
		} else {
			pending = true
		}
	}
	m.pollFn = m.poll
	return pending
}

// xdpSpin is how many times a shard that has just served frames yields its
// CPU (sched_yield), looking at its RX rings in between, before it sleeps
// in poll; xdpMaxSkips bounds the polls skipped in a row.
//
// Why: under load a shard served a few frames per poll, and each poll
// slept and was woken again by the sender's CPU. A yield instead lets a
// thread waiting for this CPU (the client, on a shared machine; another
// shard) run and send, and the frames are in the ring when the shard gets
// the CPU back, with no sleep and no wake-up. Measured side by side with
// dnsperf over a veth pair, 2 shards on 2 CPUs: with 2 queues 184-203k
// queries/s against 121-142k without, at 2.6-3.1 us of server CPU per
// query against 4.8-5.8; with 1 queue 150-173k against 129-151k. 8 beat 32
// (the longer spin took CPU the client needed). When nothing is waiting
// for the CPU a yield returns at once: an idle shard spends xdpSpin yields,
// a few microseconds, after its last batch, then sleeps.
const (
	xdpSpin     = 8
	xdpMaxSkips = 16
)

// framesSoon yields the CPU up to xdpSpin times while the shard's RX rings
// are empty, and reports whether frames came.
func (s *shard) framesSoon() bool {
	for i := 0; ; i++ {
		for _, p := range s.xdp {
			if p.ready.Load() && p.sock.Pending() {
				return true
			}
		}
		if i == xdpSpin {
			return false
		}
		_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) // never blocks: raw, no scheduler hand-off
	}
}

// drainXDP serves what the RX rings hold at a stop (the programs were
// detached first, so they only shrink).
func (s *shard) drainXDP() {
	for _, p := range s.xdp {
		for s.serveXDP(p) > 0 {
		}
	}
}

// pollWait waits for the UDP socket or an AF_XDP socket to be readable,
// or rxWait, or a stop (the read deadline) or a close; udp says the UDP
// socket is readable.
func (m *mmsgConn) pollWait() (udp bool, err error) {
	if m.tid.Load() == 0 {
		m.tid.Store(int32(unix.Gettid()))
	}
	switch {
	case m.closed.Load():
		return false, net.ErrClosed
	case m.woken.Load():
		return false, os.ErrDeadlineExceeded
	}
	if err := m.rc.Control(m.pollFn); err != nil {
		return false, m.closedErr(err)
	}
	if m.pollErr != 0 && m.pollErr != unix.EINTR {
		return false, os.NewSyscallError("poll", m.pollErr)
	}
	return m.pollFds[0].Revents&unix.POLLIN != 0, nil
}

// poll runs one poll(2) over the shard's sockets (built once: a method
// value made per call would allocate).
func (m *mmsgConn) poll(fd uintptr) {
	m.pollFds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	_, err := unix.Poll(m.pollFds, int(rxWait.Milliseconds()))
	m.pollErr = 0
	if errno, ok := err.(syscall.Errno); ok {
		m.pollErr = errno
	}
}

// serveXDP serves up to a batch of frames from p's RX ring, returns their
// frames to the kernel and sends the replies; it returns how many it took.
func (s *shard) serveXDP(p *xdpPort) int {
	if !p.ready.Load() {
		return 0
	}
	n := p.sock.Receive(len(p.hdrs))
	if n == 0 {
		return 0
	}
	for i := 0; i < n; {
		i = s.serveXDPFrom(p, i, n)
	}
	p.sock.Release(n)
	if s.replies.Len() == 0 {
		s.publishXDP(p)
		return n
	}
	s.flushXDP(p)
	return n
}

// serveXDPFrom serves frames i..n-1 as serveFrom serves datagrams: a
// handler panic costs its frame only.
func (s *shard) serveXDPFrom(p *xdpPort, i, n int) (next int) {
	defer func() {
		if r := recover(); r != nil {
			s.handlerPanicked(r, &p.counts)
			next = i + 1 // the frame after the one that panicked
		}
	}()
	for ; i < n; i++ {
		data, ok := xdp.Parse(p.sock.Frame(i), &p.req)
		if !ok {
			p.counts.RxErrors++ // a frame the program let through but that is not a whole datagram
			continue
		}
		p.counts.RxPackets++
		p.counts.RxBytes += uint64(len(data))
		if len(data) > s.maxPacket {
			p.counts.Truncated++
			continue
		}
		if !s.replies.Room() {
			s.flushXDP(p)
		}
		s.pkt.Data = data
		s.pkt.Src = p.req.Src
		s.pkt.Dst = p.req.Dst.Addr()
		before := s.replies.Len()
		if err := s.handler.ServePacket(s.replies.Begin(&s.pkt), &s.pkt); err != nil {
			p.counts.HandlerErrors++
		}
		for k := before; k < s.replies.Len(); k++ {
			p.hdrs[k] = p.req
		}
	}
	return n
}

// flushXDP publishes the counters (the replies counted as sent, as flush
// does) and sends the queued replies: each one built into a TX frame, one
// kick for them all. A reply longer than the interface's MTU leaves through
// the shard's UDP socket instead, so that the kernel fragments it, and so
// does one longer than a UMEM frame (an MTU over 4 KiB).
func (s *shard) flushXDP(p *xdpPort) {
	replies := s.replies.Replies()
	if len(replies) == 0 {
		return
	}
	p.counts.TxPackets += uint64(len(replies))
	p.counts.TxBytes += uint64(s.replies.Bytes())
	s.publishXDP(p)
	failed, big := 0, 0
	for k := range replies {
		r := &replies[k]
		h := &p.hdrs[k]
		src := netip.AddrPortFrom(r.Src, h.Dst.Port())
		if !r.Src.IsValid() || r.Src.Is4() != r.Dst.Addr().Is4() {
			src = h.Dst
		}
		if l := xdp.HeadersLen(h, src.Addr()) + len(r.Data); l-xdp.LinkLen(h) > p.iface.mtu || l > p.sock.FrameSize() {
			replies[big] = *r // sent below by the UDP socket, in order
			big++
			continue
		}
		f := p.sock.TxFrame()
		n := 0
		if f != nil {
			n = xdp.Build(f, h, src, r.Dst, r.Data)
		}
		if n == 0 {
			failed++
			continue
		}
		p.sock.Transmit(n)
	}
	if errno := p.sock.Kick(); errno != 0 {
		s.logOnce(os.NewSyscallError("sendto AF_XDP", errno), "XDP send failed; counting further failures of this kind in shardd_send_errors_total")
	}
	if big > 0 {
		f, err := s.bc.writeBatch(replies[:big], nil) // counted and published above
		failed += f
		if err != nil {
			s.logOnce(err, "send failed; counting further failures of this kind in shardd_send_errors_total")
		}
	}
	s.replies.Reset()
	if failed > 0 {
		p.counts.SendErrors += uint64(failed)
		p.ctr.Publish(&p.counts)
	}
}

// publishXDP publishes the handler's counters and p's.
func (s *shard) publishXDP(p *xdpPort) {
	if s.pub != nil {
		s.pub.Publish()
	}
	p.ctr.Publish(&p.counts)
}

// xdpSnapshots appends one snapshot per AF_XDP socket of the shard.
func (s *shard) xdpSnapshots(dst []metrics.Snapshot, listener string) []metrics.Snapshot {
	for _, p := range s.xdp {
		snap := metrics.Snapshot{Listener: listener + "@" + p.iface.name, Proto: "xdp", Shard: s.id, CPU: s.cpu, Counts: p.ctr.Load()}
		if !p.ready.Load() {
			// not bound yet
		} else if st, err := p.sock.Stats(); err == nil {
			snap.XDP = metrics.XDPStats(st)
		} else if f := p.final.Load(); f != nil {
			snap.XDP = *f
		}
		dst = append(dst, snap)
	}
	return dst
}

// closeXDP records the sockets' final ring counts and closes them.
func (s *shard) closeXDP() {
	for _, p := range s.xdp {
		if st, err := p.sock.Stats(); err == nil && p.ready.Load() {
			f := metrics.XDPStats(st)
			p.final.Store(&f)
		}
		_ = p.sock.Close()
	}
}

// XDPAttachments lists the shardd programs attached to the interfaces of
// this network namespace, with their listeners and sockets. Needs CAP_BPF
// (or root).
func XDPAttachments() ([]XDPAttachment, error) {
	socks, serr := xdp.Sockets()
	list, err := xdp.Attached(socks)
	out := make([]XDPAttachment, 0, len(list))
	for _, a := range list {
		x := XDPAttachment{Iface: a.Iface, ProgramID: a.ProgramID, LinkID: a.LinkID, Listeners: a.Listeners, SocketsErr: serr}
		for _, s := range a.Sockets {
			x.Sockets = append(x.Sockets, XDPSocket{Inode: s.Inode, Queue: s.Queue, UID: s.UID})
		}
		out = append(out, x)
	}
	return out, err
}
