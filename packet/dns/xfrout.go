package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
)

// Zone transfers are served by a TransferServer, apart from the shards: a
// shard's TCP path answers one message with at most a few replies of up to
// 64 KiB that must fit the connection's memory budget at once, and never
// blocks; a transfer is a stream of as many messages as the zone needs,
// written one at a time as the client reads them. A TransferServer gives
// each connection a goroutine (miekg/dns's server, which also verifies and
// generates TSIG) and bounds what it holds: one message of at most about
// xfrMsgSize being written (the zone's records are read in place, never
// copied), a write deadline per message, and at most MaxConns connections.

// xfrMsgSize is what one transfer message's records take, uncompressed,
// before the next message starts (one record larger than it goes alone).
const xfrMsgSize = 16 << 10

// TransferOptions bound a TransferServer.
type TransferOptions struct {
	MaxConns     int           // connections at once (0: 64); more are closed at accept
	IdleTimeout  time.Duration // a connection that sends no query for this long is closed (0: 10s)
	WriteTimeout time.Duration // a message the client does not take in this long ends the connection (0: 10s)
}

// TransferServer serves AXFR and IXFR over TCP to the sources the
// server's PrimaryConfig allows (everything else REFUSED), and answers any
// other query as the shards do, so a secondary can ask it for the SOA too.
type TransferServer struct {
	s   *Server
	ln  *limitListener
	srv *mdns.Server

	done chan error // Serve's result, after Start

	mu sync.Mutex // one query at a time through h and q
	h  *Handler
	q  *packet.ReplyQueue
}

// NewTransferServer returns a transfer server for s on ln; Serve starts it.
func (s *Server) NewTransferServer(ln net.Listener, o TransferOptions) *TransferServer {
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	t := &TransferServer{
		s:  s,
		ln: &limitListener{Listener: ln, max: int64(o.MaxConns), writeTimeout: o.WriteTimeout, conns: map[string]*limitConn{}},
		h:  &Handler{srv: s, shard: -1},
		q:  packet.NewReplyQueue(1, 65535, 65535),
	}
	var keys map[string]string
	if s.primary != nil {
		keys = s.primary.cfg.TSIG
	}
	idle := o.IdleTimeout
	t.srv = &mdns.Server{
		Listener:    t.ln,
		Net:         "tcp",
		Handler:     t,
		TsigSecret:  keys,
		ReadTimeout: idle,
		IdleTimeout: func() time.Duration { return idle },
		// Keep each message as read: a signed one that is not a transfer
		// (NOTIFY) goes to the handler as it came, since a repacked
		// message need not match its MAC.
		DecorateReader: func(r mdns.Reader) mdns.Reader { return rawReader{r} },
	}
	return t
}

// rawReader keeps the last message read on each connection (limitConn.last).
type rawReader struct{ mdns.Reader }

func (r rawReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	m, err := r.Reader.ReadTCP(conn, timeout)
	if c, ok := conn.(*limitConn); ok {
		// A copy: miekg's TSIG check lowers ARCOUNT in m itself. Read and
		// served on the connection's one goroutine, in turn.
		c.last = slices.Clone(m)
	}
	return m, err
}

// Serve serves until Shutdown.
func (t *TransferServer) Serve() error { return t.srv.ActivateAndServe() }

// Shutdown stops accepting and closes the connections, waiting for their
// goroutines until ctx ends.
func (t *TransferServer) Shutdown(ctx context.Context) error { return t.srv.ShutdownContext(ctx) }

// Start serves on a goroutine of its own until Stop.
func (t *TransferServer) Start() {
	t.done = make(chan error, 1)
	go func() { t.done <- t.Serve() }()
}

// Stop ends what Start started: Shutdown, then it waits for the serving
// goroutine (a transfer blocked on a client ends at its write timeout).
func (t *TransferServer) Stop(ctx context.Context) error {
	err := t.Shutdown(ctx)
	<-t.done
	return err
}

// Refused counts the connections closed at accept for MaxConns.
func (t *TransferServer) Refused() uint64 { return t.ln.refused.Load() }

// ServeDNS implements mdns.Handler.
func (t *TransferServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if req.Opcode == mdns.OpcodeQuery && len(req.Question) == 1 {
		switch req.Question[0].Qtype {
		case mdns.TypeAXFR, mdns.TypeIXFR:
			t.transfer(w, req)
			return
		}
	}
	t.answer(w, req)
}

// answer serves a query that is not a transfer through a shard handler.
func (t *TransferServer) answer(w mdns.ResponseWriter, req *mdns.Msg) {
	b := t.ln.lastRead(w.RemoteAddr())
	if b == nil {
		var err error
		if b, err = req.Pack(); err != nil {
			return
		}
	}
	p := &packet.Packet{Data: b, Src: addrPort(w.RemoteAddr()), Proto: packet.TCP}
	t.mu.Lock()
	t.q.Reset()
	_ = t.h.ServePacket(t.q.Begin(p), p)
	var reply []byte
	if r := t.q.Replies(); len(r) > 0 {
		reply = append(reply, r[0].Data...)
	}
	t.mu.Unlock()
	if reply != nil {
		_, _ = w.Write(reply)
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// transfer answers an AXFR or IXFR: NOTAUTH for a zone not served here or
// a TSIG that does not verify, REFUSED for a source the ACL does not
// allow, SERVFAIL for an expired secondary zone, else the zone (AXFR), its changes since the client's serial
// (IXFR), the full zone when the journal does not go back that far, or
// the current SOA alone when the client is up to date.
func (t *TransferServer) transfer(w mdns.ResponseWriter, req *mdns.Msg) {
	q := req.Question[0]
	z := t.s.zones.Load().zone(q.Name)
	p := t.s.primary
	tsig := req.IsTsig()
	if err := t.tsigStatus(w, tsig); err != nil {
		if z != nil && p != nil {
			p.count(z.Origin, q.Qtype, xfrBadKey)
			p.logOnce("badkey", "zone transfer refused: its TSIG did not verify (NOTAUTH)", zap.String("zone", z.Origin),
				zap.Stringer("client", w.RemoteAddr()), zap.String("key", tsig.Hdr.Name), zap.String("reason", err.Error()))
		}
		tsigError(w, req, tsig, err)
		return
	}
	if z == nil || q.Qclass != mdns.ClassINET || p == nil {
		rcode := mdns.RcodeNotAuth
		if z != nil {
			rcode = mdns.RcodeRefused
		}
		replyRcode(w, req, rcode, tsig)
		return
	}
	key := ""
	if tsig != nil {
		key = mdns.CanonicalName(tsig.Hdr.Name)
	}
	src := addrPort(w.RemoteAddr()).Addr()
	if !p.allowed(src, key) {
		p.count(z.Origin, q.Qtype, xfrRefused)
		p.logOnce("refused", "zone transfer refused: source and key not in --allow-transfer", zap.String("zone", z.Origin),
			zap.Stringer("client", w.RemoteAddr()), zap.String("key", key))
		replyRcode(w, req, mdns.RcodeRefused, tsig)
		return
	}
	if z.expired() {
		p.count(z.Origin, q.Qtype, xfrRefused)
		p.logOnce("expired", "zone transfer refused: the zone is expired (SERVFAIL) until its primary answers", zap.String("zone", z.Origin),
			zap.Stringer("client", w.RemoteAddr()))
		replyRcode(w, req, mdns.RcodeServerFailure, tsig)
		return
	}
	x := &xfrOut{w: w, req: req, tsig: tsig}
	start := time.Now()
	result, err := x.stream(p, z, q.Qtype)
	fields := []zap.Field{zap.String("zone", z.Origin), zap.String("type", mdns.TypeToString[q.Qtype]), zap.Stringer("client", w.RemoteAddr()),
		zap.String("key", key), zap.Uint32("serial", z.Serial), zap.Int("messages", x.msgs), zap.Int("records", x.records),
		zap.Duration("took", time.Since(start))}
	if err != nil {
		result = xfrCut
		_ = w.Close()
		p.log.Warn("zone transfer cut; the client may retry", append(fields, zap.Error(err))...)
	} else {
		p.log.Info("zone transfer sent", append(fields, zap.String("result", result))...)
	}
	p.count(z.Origin, q.Qtype, result)
}

// tsigStatus is why a request's TSIG does not verify, nil if it does or
// there is none. miekg's server verifies only when it has keys: a key
// this server does not have is ErrSecret here, keys or none.
func (t *TransferServer) tsigStatus(w mdns.ResponseWriter, tsig *mdns.TSIG) error {
	if tsig == nil {
		return nil
	}
	if p := t.s.primary; p == nil || p.cfg.TSIG[mdns.CanonicalName(tsig.Hdr.Name)] == "" {
		return mdns.ErrSecret
	}
	return w.TsigStatus()
}

// zone returns the zone whose origin is name, or nil.
func (zs *Zones) zone(name string) *Zone {
	wire, err := wireName(canonical(name))
	if err != nil {
		return nil
	}
	return zs.byOrigin[string(wire)]
}

// replyRcode sends an empty reply with rcode, signed when tsig is set.
func replyRcode(w mdns.ResponseWriter, req *mdns.Msg, rcode int, tsig *mdns.TSIG) {
	m := new(mdns.Msg)
	m.SetRcode(req, rcode)
	if tsig != nil {
		m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, tsig.Fudge, time.Now().Unix())
	}
	_ = w.WriteMsg(m)
}

// tsigError answers a request whose TSIG did not verify: NOTAUTH with the
// TSIG error (BADKEY, BADSIG, BADTIME) and no MAC (RFC 8945 5.3.2).
func tsigError(w mdns.ResponseWriter, req *mdns.Msg, tsig *mdns.TSIG, err error) {
	m := new(mdns.Msg)
	m.SetRcode(req, mdns.RcodeNotAuth)
	m.Extra = append(m.Extra, tsigErrorRecord(req.Id, tsig, tsigErrorCode(err)))
	if b, err := m.Pack(); err == nil {
		_, _ = w.Write(b) // unsigned: Write, not WriteMsg
	}
}

// xfrOut writes one transfer's messages, each holding records up to
// xfrMsgSize, signed in a chain when the request was (RFC 8945 5.3.1).
type xfrOut struct {
	w       mdns.ResponseWriter
	req     *mdns.Msg
	tsig    *mdns.TSIG
	rrs     []mdns.RR
	size    int
	msgs    int // messages written
	records int // records written
}

// stream writes the answer to an allowed AXFR or IXFR for z and returns
// the result to count.
func (x *xfrOut) stream(p *primary, z *Zone, qtype uint16) (string, error) {
	if qtype == mdns.TypeAXFR {
		return xfrSent, x.full(z)
	}
	var serial uint32
	if len(x.req.Ns) == 1 {
		if soa, ok := x.req.Ns[0].(*mdns.SOA); ok {
			serial = soa.Serial
		}
	}
	if !serialLess(serial, z.Serial) {
		return xfrUpToDate, x.send(z.soa)
	}
	diffs, ok := p.journal.since(z, serial)
	if !ok {
		return xfrFull, x.full(z)
	}
	if err := x.add(z.soa); err != nil {
		return "", err
	}
	for _, d := range diffs {
		if err := x.addDiff(d); err != nil {
			return "", err
		}
	}
	return xfrSent, x.send(z.soa)
}

// full writes the whole zone: SOA, every other record, SOA (RFC 5936 2.2).
func (x *xfrOut) full(z *Zone) error {
	if err := x.add(z.soa); err != nil {
		return err
	}
	if err := z.eachRR(x.add); err != nil {
		return err
	}
	return x.send(z.soa)
}

// addDiff adds one change in IXFR form: the old SOA, the deleted records,
// the new SOA, the added records (RFC 1995 4).
func (x *xfrOut) addDiff(d *diff) error {
	for _, part := range [][]mdns.RR{{d.from}, d.del, {d.to}, d.add} {
		for _, rr := range part {
			if err := x.add(rr); err != nil {
				return err
			}
		}
	}
	return nil
}

// send adds the last record and writes what is left.
func (x *xfrOut) send(last mdns.RR) error {
	if err := x.add(last); err != nil {
		return err
	}
	return x.flush()
}

// add adds rr to the message being built, writing that message first if
// rr would take it past xfrMsgSize.
func (x *xfrOut) add(rr mdns.RR) error {
	n := mdns.Len(rr)
	if len(x.rrs) > 0 && x.size+n > xfrMsgSize {
		if err := x.flush(); err != nil {
			return err
		}
	}
	x.rrs = append(x.rrs, rr)
	x.size += n
	return nil
}

// flush writes the message being built.
func (x *xfrOut) flush() error {
	m := new(mdns.Msg)
	m.SetReply(x.req)
	m.Authoritative = true
	m.Compress = true
	m.Answer = x.rrs
	if x.tsig != nil {
		m.SetTsig(x.tsig.Hdr.Name, x.tsig.Algorithm, x.tsig.Fudge, time.Now().Unix())
	}
	err := x.w.WriteMsg(m)
	x.w.TsigTimersOnly(true) // later messages' MACs chain on this one's (RFC 8945 5.3.1)
	if err == nil {
		x.msgs++
		x.records += len(x.rrs)
	}
	clear(x.rrs)
	x.rrs, x.size = x.rrs[:0], 0
	return err
}

// limitListener closes connections past max at accept, and gives each
// connection it hands out a write deadline per write.
type limitListener struct {
	net.Listener
	max          int64
	writeTimeout time.Duration
	active       atomic.Int64
	refused      atomic.Uint64

	mu    sync.Mutex
	conns map[string]*limitConn // by remote address, while open
}

// lastRead is the message last read from the connection of remote, nil
// if it is not open.
func (l *limitListener) lastRead(remote net.Addr) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[remote.String()]; c != nil {
		return c.last
	}
	return nil
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		lc := &limitConn{Conn: c, l: l}
		l.mu.Lock()
		l.conns[c.RemoteAddr().String()] = lc
		l.mu.Unlock()
		return lc, nil
	}
}

type limitConn struct {
	net.Conn
	l      *limitListener
	closed atomic.Bool
	last   []byte // the message last read (rawReader)
}

func (c *limitConn) Write(b []byte) (int, error) {
	if err := c.SetWriteDeadline(time.Now().Add(c.l.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *limitConn) Close() error {
	if !c.closed.Swap(true) {
		c.l.active.Add(-1)
		c.l.mu.Lock()
		if c.l.conns[c.RemoteAddr().String()] == c {
			delete(c.l.conns, c.RemoteAddr().String())
		}
		c.l.mu.Unlock()
	}
	return c.Conn.Close()
}
