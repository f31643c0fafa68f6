package shard

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/sockinfo"
)

// Defaults applied by Listen to zero-valued Config fields.
const (
	DefaultBatch     = 64
	MaxBatch         = 1024
	DefaultMaxPacket = 65535
	// DefaultRcvBuf is the receive buffer asked for each shard's socket. The
	// kernel default (208 KiB) drops bursts even at moderate rates; peers
	// (Knot, unbound, rsyslog's imudp tuning guides) use 4-8 MiB.
	DefaultRcvBuf = 4 << 20
	// KernelDefault as Config.RcvBuf keeps the kernel's default buffer.
	KernelDefault = -1

	DefaultMaxConns     = 1024
	DefaultIdleTimeout  = 60 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxFrame     = 65535
	// DefaultMaxConnMemory bounds what one TCP connection may hold: input
	// read but not yet served plus replies not yet written. It must hold one
	// frame and one message's replies (MinConnMemory); 256 KiB does for the
	// default MaxFrame and 64 KiB DNS answers, and a larger MaxFrame raises
	// the default to MinConnMemory(MaxFrame) (TCPMemory).
	DefaultMaxConnMemory = 256 << 10
	// DefaultMaxShardMemory bounds what all the TCP connections of one shard
	// hold together; a connection that would go over waits (reads nothing)
	// until others give memory back or its idle timeout closes it.
	DefaultMaxShardMemory = 64 << 20
	// DefaultMaxConnsPerIP is how many TCP connections one source address
	// (IPv6: one /64) may hold on one shard: a quarter of DefaultMaxConns,
	// so one address cannot take a shard (a busy resolver behind one
	// address still gets hundreds).
	DefaultMaxConnsPerIP = 256
)

// Steer is how a group spreads datagrams over its shards. Its String form
// ("hash", "random", "cpu") is the spelling UnmarshalText accepts.
type Steer uint8

const (
	// SteerHash leaves the choice to the kernel's 4-tuple hash (no program).
	SteerHash Steer = iota
	// SteerRandom attaches a classic BPF program that picks a random shard
	// per datagram: one heavy flow spreads evenly; per-flow order is lost.
	SteerRandom
	// SteerCPU picks the shard pinned to the CPU that received the datagram.
	SteerCPU
)

func (s Steer) String() string {
	switch s {
	case SteerHash:
		return "hash"
	case SteerRandom:
		return "random"
	case SteerCPU:
		return "cpu"
	}
	return "Steer(" + strconv.Itoa(int(s)) + ")"
}

// UnmarshalText sets s from its String form; anything else is a *ConfigError.
func (s *Steer) UnmarshalText(b []byte) error {
	for v := SteerHash; v <= SteerCPU; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return &ConfigError{"Steer", string(b), "unknown steering", "use hash, cpu or random"}
}

// TCPShape is how a shard serves its TCP connections. Its String form
// ("loop", "goroutines") is the spelling UnmarshalText accepts.
type TCPShape uint8

const (
	// TCPShapeAuto is the platform's choice: TCPShapeLoop on Linux,
	// TCPShapeGoroutines elsewhere.
	TCPShapeAuto TCPShape = iota
	// TCPShapeLoop serves a shard's connections from one epoll loop on its
	// own locked thread (gnet's shape; ~400 bytes per idle connection).
	TCPShapeLoop
	// TCPShapeGoroutines serves each connection from a goroutine on Go's
	// netpoller (~10 KiB per connection).
	TCPShapeGoroutines
)

func (t TCPShape) String() string {
	switch t {
	case TCPShapeAuto:
		return ""
	case TCPShapeLoop:
		return "loop"
	case TCPShapeGoroutines:
		return "goroutines"
	}
	return "TCPShape(" + strconv.Itoa(int(t)) + ")"
}

// UnmarshalText sets t from its String form ("" is TCPShapeAuto); anything
// else is a *ConfigError.
func (t *TCPShape) UnmarshalText(b []byte) error {
	for v := TCPShapeAuto; v <= TCPShapeGoroutines; v++ {
		if v.String() == string(b) {
			*t = v
			return nil
		}
	}
	return &ConfigError{"TCPShape", string(b), "unknown shape", "use loop or goroutines"}
}

// Config describes one listener: an address and the shards that serve it. The
// zero value of each field means the documented default.
type Config struct {
	// Addr is "HOST:PORT". An empty host (":5353") serves IPv4 and IPv6 on one
	// dual-stack socket per shard; an IPv4 host serves IPv4 only; an IPv6 host
	// (including "[::]") serves IPv6 only. Port 0 picks a free port, the same
	// for every shard.
	Addr string
	// Shards is the number of sockets and goroutines; 0 means DefaultShards():
	// runtime.GOMAXPROCS(0) on Linux, which follows the affinity mask and
	// cgroup CPU limits, and 1 elsewhere (shards share a port through
	// Linux's SO_REUSEPORT only).
	Shards int
	// Pin pins shard i to the i-th CPU of the process's affinity mask.
	Pin bool
	// Batch is the number of datagrams per receive or send call, 1..MaxBatch; 0 means DefaultBatch.
	Batch int
	// MaxPacket is the largest datagram handled; longer datagrams (each
	// datagram of a coalesced GRO buffer alike) are counted as truncated
	// and not handled. Without GRO it is also the receive slot's size. 0
	// means DefaultMaxPacket.
	MaxPacket int
	// RcvBuf is the receive buffer to ask of each socket; 0 means
	// DefaultRcvBuf and KernelDefault leaves the kernel's default alone.
	// When the sysctl cap (net.core.rmem_max) is lower and the process has
	// CAP_NET_ADMIN, SO_RCVBUFFORCE is used. The effective value is in Info.
	RcvBuf int
	// SndBuf is the send buffer to ask of each socket; 0 keeps the kernel default.
	SndBuf int
	// GRO is UDP generic receive offload on the shard sockets: with it the
	// kernel hands a receive call several datagrams of one flow in one
	// buffer (a GSO sender's over loopback, a NIC's GRO), which the shard
	// splits back into datagrams in place; handlers see no difference.
	// Receive slots then hold a coalesced buffer: 64 KiB each whatever
	// MaxPacket (Batch x 64 KiB per shard). OffloadAuto (the zero value) turns
	// it on where the kernel supports it; OffloadOn fails Listen where it cannot.
	GRO Offload
	// GSO groups the replies of one batch that go to the same destination
	// (from the same source address) with the same size into one send with
	// UDP_SEGMENT, which the kernel cuts into the datagrams (Linux 4.18+):
	// OffloadAuto (the zero value) where the kernel supports it, OffloadOn
	// requires that support, OffloadOff never groups. A socket whose path
	// refuses a GSO send (EIO: no checksum offload) sends its replies one by
	// one from then on; a segment size the path refuses (over its MTU:
	// EMSGSIZE, or EINVAL on older kernels) is not grouped again. Clients
	// cannot tell: every reply is still its own datagram.
	GSO Offload
	// Steer picks how datagrams are spread over the shards: SteerHash
	// (default: the kernel's 4-tuple hash, no program), SteerRandom (a
	// classic BPF program picks a random shard per datagram: one heavy flow
	// spreads evenly; per-flow order is lost) or SteerCPU (the shard pinned to
	// the CPU that received the datagram; needs Pin and one shard per CPU).
	Steer Steer
	// Exclusive refuses to start when the port already has other
	// processes' sockets. With SteerRandom or SteerCPU the attached program
	// only ever picks this group's sockets, so a socket that joins the port
	// later gets no UDP traffic; with SteerHash no program is attached
	// (classic BPF cannot compute the kernel's flow hash) and the hijack
	// guard reports joiners instead.
	Exclusive bool

	// UDP and TCP select the transports served on Addr; neither means UDP.
	// With TCP each shard also owns one SO_REUSEPORT listener.
	UDP, TCP bool
	// MaxConns is the number of TCP connections a shard keeps open. When it
	// is full, a new connection replaces the one that has completed no
	// message for the longest, if that is at least a second (min(1s,
	// IdleTimeout); closed as "evicted"); otherwise the new one is accepted
	// and closed at once ("limit"). 0 means DefaultMaxConns.
	MaxConns int
	// IdleTimeout closes a TCP connection that completes no message for this
	// long, slow clients included (bytes that do not finish a frame, and
	// frames that carry no message, do not extend it). 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// WriteTimeout closes a TCP connection that does not take its replies
	// for this long. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// TCPShape is how a shard serves its TCP connections: TCPShapeLoop, one
	// epoll loop on the shard's own locked thread (gnet's shape; ~400 bytes
	// of memory per idle connection), or TCPShapeGoroutines, a goroutine per
	// connection on Go's netpoller (~10 KiB each). TCPShapeAuto (the zero
	// value) means the loop on Linux and goroutines elsewhere.
	TCPShape TCPShape
	// MaxFrame is the largest TCP message; a longer frame closes the
	// connection (counted). 0 means DefaultMaxFrame.
	MaxFrame int
	// MaxConnMemory is the most one TCP connection holds in buffers: input
	// read and not yet served plus replies not yet written. A connection at
	// its limit stops taking messages out of its input (and stops reading)
	// until the client reads its replies. It must be at least
	// MinConnMemory(MaxFrame). 0 means DefaultMaxConnMemory, or
	// MinConnMemory(MaxFrame) if that is larger.
	MaxConnMemory int
	// MaxShardMemory is the most all the TCP connections of one shard hold
	// in buffers together: a connection that would go over stops reading
	// and serving until memory comes back (backpressure). MaxConns x
	// MaxConnMemory may well exceed it (1024 x 256 KiB = 256 MiB against
	// 64 MiB by default): this budget bounds the sum of what the
	// connections hold, whatever their number. At least MaxConnMemory. 0
	// means DefaultMaxShardMemory, or MaxConnMemory if that is larger.
	MaxShardMemory int
	// MaxConnsPerIP is how many TCP connections one source address may
	// hold on one shard (IPv6 addresses count per /64); more are accepted
	// and closed at once (counted). Per shard, as MaxConns, so accepting
	// takes no lock shared between shards. 0 means
	// DefaultConnsPerIP(MaxConns): 256, or a quarter of a lower MaxConns
	// (at least 4, or MaxConns if smaller).
	MaxConnsPerIP int

	// TLS, when set, serves TLS on the TCP listeners (see tls.go): the
	// group is then TCP only (UDP is refused), on the goroutine shape
	// (TCPShapeLoop is refused; TCPShapeAuto means goroutines), and every
	// connection handshakes before its first frame. ServerTLS builds one.
	TLS *tls.Config
	// TLSHandshakeTimeout cuts a TLS connection that has not finished its
	// handshake this long after the accept. 0 means
	// DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration

	// NewHandler returns the handler of shard i. Each shard gets its own, so
	// handler state is shard-local and needs no locks. Nil means packet.Echo.
	NewHandler func(shard int) packet.Handler
	// Logger receives the group's rare events (never one per packet); nil discards them.
	Logger *zap.Logger

	// Inherit holds sockets handed over by a previous process (an upgrade
	// or systemd socket activation), by name: "udp/N" and "tcp/N" for shard
	// N. A shard with an inherited socket adopts it instead of binding, so
	// its queue, reuseport slot and steering program carry over.
	Inherit map[string]*os.File
	// Upgrade says Inherit comes from a previous shardd (an upgrade): the
	// sockets are already ours, in order, with any steering program attached.
	// Sockets from systemd get the foreign-socket check and the program.
	Upgrade bool
	// Own holds the inodes of this process's other sockets (Group.Inodes of
	// the groups it already listens with): they are never foreign to this
	// group, so 0.0.0.0:53 beside [::]:53 may steer and be Exclusive. Listen
	// only reads it.
	Own sockinfo.Inodes

	// XDP names network interfaces on which the UDP datagrams to Addr are
	// also taken by an AF_XDP fast path (Linux; root or CAP_NET_ADMIN,
	// CAP_BPF and CAP_NET_RAW): an XDP program redirects them from receive
	// queue i into an AF_XDP socket of shard i, which builds the same
	// packet.Packet and sends the replies as frames it builds itself
	// (xdp_linux.go). Everything else on the interface (other ports, TCP,
	// ICMP, ARP) goes to the kernel as before. Such datagrams bypass the
	// kernel's network stack: netfilter and packet sockets (tcpdump) do not
	// see them or their replies. Needs UDP.
	XDP []string

	// noBatchIO forces the portable one-datagram-per-call path (tests).
	noBatchIO bool
}

// ConfigError reports a Config field that cannot be used; the daemon maps it
// to exit code 2 (usage error). Field, and any field named in Problem and
// Hint, is spelled as in Config ("Shards", "MaxFrame"), so a program with
// its own names for them (cmd/shardd's flags) can translate.
type ConfigError struct {
	Field   string // the Config field, e.g. "Shards"; "Addr" for the address
	Value   string
	Problem string
	Hint    string // how to fix it
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Field, e.Value, e.Problem)
	if e.Field == "Addr" {
		msg = fmt.Sprintf("address %s: %s", e.Value, e.Problem)
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Validate checks c as Listen would, without binding anything: the address,
// every range and every combination of fields. Its errors are *ConfigError.
// Checks that need the running system (the CPUs Pin may use) happen in Listen.
func (c Config) Validate() error {
	_, err := c.resolve(DefaultShards())
	return err
}

// DefaultShards is what Shards 0 means: runtime.GOMAXPROCS(0) on Linux, and
// 1 on other systems, where one socket per address is all that binds.
func DefaultShards() int {
	if !sharedPort {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// resolved is a Config with defaults applied and the address parsed.
type resolved struct {
	Config
	network string // "udp" (dual-stack), "udp4" or "udp6"
	addr    netip.AddrPort
}

// TCPMemory applies the defaults to the per-connection and per-shard TCP
// memory limits (0: not given): the connection's default holds at least one
// frame of maxFrame and its replies, and the shard's at least one such
// connection. Values given are returned as they are (Listen checks them).
func TCPMemory(maxFrame, conn, shard int) (int, int) {
	if conn == 0 {
		conn = max(DefaultMaxConnMemory, MinConnMemory(maxFrame))
	}
	if shard == 0 {
		shard = max(DefaultMaxShardMemory, conn)
	}
	return conn, shard
}

// DefaultConnsPerIP is the per-address connection limit for a MaxConns:
// DefaultMaxConnsPerIP, or a quarter of maxConns when that is lower, so the
// limit still keeps one address from taking a shard; but never under 4 (or
// maxConns itself when that is smaller): a tiny MaxConns is a test or a
// single-client setup, not a shard shared by many addresses.
func DefaultConnsPerIP(maxConns int) int {
	return min(DefaultMaxConnsPerIP, max(maxConns/4, min(maxConns, 4)))
}

// resolve applies the defaults and checks the result. The address is
// checked last, so a program that validates its other settings before it
// knows an address can tell the two apart by Field.
func (c Config) resolve(shards int) (resolved, error) {
	r := resolved{Config: c.withDefaults(shards)}
	for _, check := range []func(c, r Config) error{checkUDP, checkTCP, checkTLS, checkSteering} {
		if err := check(c, r.Config); err != nil {
			return r, err
		}
	}
	network, ap, err := ParseAddr(c.Addr)
	if err != nil {
		return r, err
	}
	r.network, r.addr = network, ap
	return r, nil
}

// withDefaults replaces each zero field by its documented default.
func (c Config) withDefaults(shards int) Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Shards, shards)
	def(&c.Batch, DefaultBatch)
	def(&c.MaxPacket, DefaultMaxPacket)
	def(&c.RcvBuf, DefaultRcvBuf)
	if c.RcvBuf == KernelDefault {
		c.RcvBuf = 0
	}
	def(&c.MaxConns, DefaultMaxConns)
	def(&c.MaxFrame, DefaultMaxFrame)
	// The memory defaults follow MaxFrame, so they always fit; only values
	// given can be too small. The per-address default follows MaxConns.
	c.MaxConnMemory, c.MaxShardMemory = TCPMemory(c.MaxFrame, c.MaxConnMemory, c.MaxShardMemory)
	def(&c.MaxConnsPerIP, DefaultConnsPerIP(c.MaxConns))
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.TLS != nil {
		c.TCP = true
		if c.TCPShape == TCPShapeAuto {
			c.TCPShape = TCPShapeGoroutines // crypto/tls needs a net.Conn
		}
	}
	if c.TLSHandshakeTimeout == 0 {
		c.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if !c.UDP && !c.TCP {
		c.UDP = true
	}
	if c.TCPShape == TCPShapeAuto {
		c.TCPShape = defaultTCPShape
	}
	if c.NewHandler == nil {
		c.NewHandler = func(int) packet.Handler { return packet.Echo{} }
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// checkUDP checks the shard and datagram settings: c as given (for the
// values reported), r with defaults applied.
func checkUDP(c, r Config) error {
	switch {
	case r.Shards < 1:
		return &ConfigError{"Shards", strconv.Itoa(c.Shards), "must be at least 1", "omit Shards for one shard per CPU"}
	case r.Shards > 1 && !sharedPort:
		return &ConfigError{"Shards", strconv.Itoa(c.Shards), "more than one shard needs SO_REUSEPORT, which shardd uses on Linux only", "use Shards 1 here"}
	case r.Batch < 1 || r.Batch > MaxBatch:
		return &ConfigError{"Batch", strconv.Itoa(c.Batch), fmt.Sprintf("must be between 1 and %d", MaxBatch), ""}
	case r.MaxPacket < 1 || r.MaxPacket > 65535:
		return &ConfigError{"MaxPacket", strconv.Itoa(c.MaxPacket), "must be between 1 and 65535", "a UDP datagram carries at most 65507 bytes over IPv4"}
	case r.RcvBuf < 0:
		return &ConfigError{"RcvBuf", strconv.Itoa(c.RcvBuf), "must not be negative", ""}
	case r.SndBuf < 0:
		return &ConfigError{"SndBuf", strconv.Itoa(c.SndBuf), "must not be negative", "0 keeps the kernel default"}
	case r.GRO > OffloadOff:
		return &ConfigError{"GRO", r.GRO.String(), "unknown mode", "use auto, on or off"}
	case r.GSO > OffloadOff:
		return &ConfigError{"GSO", r.GSO.String(), "unknown offload setting", "use auto, on or off"}
	case len(r.XDP) > 0 && !r.UDP:
		return &ConfigError{"XDP", strings.Join(r.XDP, ","), "is a UDP fast path, and the address serves no UDP", "drop XDP or serve UDP"}
	}
	return nil
}

// checkTCP checks the connection limits, timeouts and memory bounds.
func checkTCP(c, r Config) error {
	switch {
	case r.MaxConns < 1:
		return &ConfigError{"MaxConns", strconv.Itoa(c.MaxConns), "must be at least 1", ""}
	case r.IdleTimeout < 0:
		return &ConfigError{"IdleTimeout", r.IdleTimeout.String(), "must be positive, e.g. 30s", ""}
	case r.WriteTimeout < 0:
		return &ConfigError{"WriteTimeout", r.WriteTimeout.String(), "must be positive, e.g. 30s", ""}
	case r.TCPShape != TCPShapeLoop && r.TCPShape != TCPShapeGoroutines:
		return &ConfigError{"TCPShape", c.TCPShape.String(), "unknown shape", "use loop or goroutines"}
	case r.MaxFrame < 1 || r.MaxFrame > 1<<24:
		return &ConfigError{"MaxFrame", strconv.Itoa(c.MaxFrame), "must be between 1 and 16777216", ""}
	case r.MaxConnMemory < MinConnMemory(r.MaxFrame):
		return &ConfigError{"MaxConnMemory", strconv.Itoa(r.MaxConnMemory),
			fmt.Sprintf("must hold one frame and one message's replies: at least %d with MaxFrame %d", MinConnMemory(r.MaxFrame), r.MaxFrame),
			"raise MaxConnMemory or lower MaxFrame"}
	case r.MaxShardMemory < r.MaxConnMemory:
		return &ConfigError{"MaxShardMemory", strconv.Itoa(r.MaxShardMemory), fmt.Sprintf("must be at least MaxConnMemory %d", r.MaxConnMemory),
			"raise MaxShardMemory or lower MaxConnMemory"}
	case r.MaxConnsPerIP < 1:
		return &ConfigError{"MaxConnsPerIP", strconv.Itoa(c.MaxConnsPerIP), "must be at least 1", "set it to MaxConns for no per-address limit"}
	}
	return nil
}

// checkTLS checks what TLS needs: a certificate, TCP alone, the goroutine
// shape and a positive handshake timeout.
func checkTLS(c, r Config) error {
	if r.TLS == nil {
		return nil
	}
	switch {
	case r.TLS.GetCertificate == nil && len(r.TLS.Certificates) == 0:
		return &ConfigError{"TLS", "", "has no certificate", "set TLS from ServerTLS with a CertStore"}
	case r.UDP:
		return &ConfigError{"TLS", "", "serves TCP only, and UDP is asked too", "serve UDP on another address (another Config)"}
	case r.TCPShape != TCPShapeGoroutines:
		return &ConfigError{"TCPShape", r.TCPShape.String(), "cannot serve TLS: crypto/tls runs on the goroutine shape", "use TCPShape goroutines (or leave it out) for a TLS address"}
	case r.TLSHandshakeTimeout < 0:
		return &ConfigError{"TLSHandshakeTimeout", c.TLSHandshakeTimeout.String(), "must be positive, e.g. 10s", ""}
	}
	return nil
}

// checkSteering checks the steering mode and what it needs.
func checkSteering(_, r Config) error {
	switch r.Steer {
	case SteerHash, SteerRandom:
		return nil
	case SteerCPU:
		if !r.Pin {
			return &ConfigError{"Steer", "cpu", "needs the shards pinned", "add Pin (one shard per CPU)"}
		}
		return nil
	}
	return &ConfigError{"Steer", r.Steer.String(), "unknown steering", "use hash, cpu or random"}
}

// ParseAddr parses a listen address: ":PORT", "IPv4:PORT" or "[IPv6]:PORT".
// It returns the network to bind ("udp" for a dual-stack wildcard, "udp4" or
// "udp6") and the address. Host names are refused: a daemon that resolves
// names at start binds to whatever DNS said that day.
func ParseAddr(s string) (network string, ap netip.AddrPort, err error) {
	bad := func(problem, hint string) (string, netip.AddrPort, error) {
		return "", netip.AddrPort{}, &ConfigError{"Addr", strconv.Quote(s), problem, hint}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return bad("not a HOST:PORT address", "write :5353, 127.0.0.1:5353 or [::1]:5353")
	}
	p, err := strconv.ParseUint(port, 10, 64)
	if err != nil || port == "" || strings.HasPrefix(port, "+") {
		return bad(fmt.Sprintf("port %q is not a number", port), "use a port from 0 to 65535")
	}
	if p > 65535 {
		return bad(fmt.Sprintf("port %d is out of range", p), "use a port from 0 to 65535")
	}
	if host == "" {
		return "udp", netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bad(fmt.Sprintf("host %q is not an IP address", host), fmt.Sprintf("use an IP such as 127.0.0.1:%d or [::1]:%d, or :%d for every address", p, p, p))
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is4() {
		return "udp4", netip.AddrPortFrom(ip, uint16(p)), nil
	}
	return "udp6", netip.AddrPortFrom(ip, uint16(p)), nil
}
