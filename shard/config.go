package shard

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet"
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
	// default --max-frame and 64 KiB DNS answers, and a larger MaxFrame
	// raises the default to MinConnMemory(MaxFrame) (TCPMemory).
	DefaultMaxConnMemory = 256 << 10
	// DefaultMaxShardMemory bounds what all the TCP connections of one shard
	// hold together; a connection that would go over waits (reads nothing)
	// until others give memory back or its idle timeout closes it. Raised
	// to the per-connection limit when that is larger (TCPMemory).
	DefaultMaxShardMemory = 64 << 20
	// DefaultMaxConnsPerIP is how many TCP connections one source address
	// (IPv6: one /64) may hold on one shard: a quarter of DefaultMaxConns,
	// so one address cannot take a shard (a busy resolver behind one
	// address still gets hundreds). With a lower MaxConns the default is a
	// quarter of it (DefaultConnsPerIP).
	DefaultMaxConnsPerIP = 256

	SteerHash   = "hash"
	SteerRandom = "random"
	SteerCPU    = "cpu"

	TCPShapeLoop       = "loop"
	TCPShapeGoroutines = "goroutines"
)

// Config describes one listener: an address and the shards that serve it. The
// zero value of each field means the documented default.
type Config struct {
	// Addr is "HOST:PORT". An empty host (":5353") serves IPv4 and IPv6 on one
	// dual-stack socket per shard; an IPv4 host serves IPv4 only; an IPv6 host
	// (including "[::]") serves IPv6 only. Port 0 picks a free port, the same
	// for every shard.
	Addr string
	// Shards is the number of sockets and goroutines; 0 means runtime.GOMAXPROCS(0),
	// which follows the affinity mask and cgroup CPU limits.
	Shards int
	// Pin pins shard i to the i-th CPU of the process's affinity mask.
	Pin bool
	// Batch is the number of datagrams per receive or send call, 1..MaxBatch; 0 means DefaultBatch.
	Batch int
	// MaxPacket is the receive buffer per datagram; longer datagrams are
	// counted as truncated and not handled. 0 means DefaultMaxPacket.
	MaxPacket int
	// RcvBuf is the receive buffer to ask of each socket; 0 means
	// DefaultRcvBuf and KernelDefault leaves the kernel's default alone.
	// When the sysctl cap (net.core.rmem_max) is lower and the process has
	// CAP_NET_ADMIN, SO_RCVBUFFORCE is used. The effective value is in Info.
	RcvBuf int
	// SndBuf is the send buffer to ask of each socket; 0 keeps the kernel default.
	SndBuf int
	// Steer picks how datagrams are spread over the shards: SteerHash
	// (default: the kernel's 4-tuple hash, no program), SteerRandom (a
	// classic BPF program picks a random shard per datagram: one heavy flow
	// spreads evenly; per-flow order is lost) or SteerCPU (the shard pinned to
	// the CPU that received the datagram; needs Pin and one shard per CPU).
	Steer string
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
	// connection on Go's netpoller (~10 KiB each). "" means the loop on Linux
	// and goroutines elsewhere.
	TCPShape string
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

	// noBatchIO forces the portable one-datagram-per-call path (tests).
	noBatchIO bool
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

// ConfigError reports a Config field that cannot be used; the daemon maps it
// to exit code 2 (usage error).
type ConfigError struct {
	Field   string // the flag name, e.g. "shards"
	Value   string
	Problem string
	Hint    string // how to fix it
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("--%s %s: %s", e.Field, e.Value, e.Problem)
	if e.Field == "addr" {
		msg = fmt.Sprintf("address %s: %s", e.Value, e.Problem)
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// resolved is a Config with defaults applied and the address parsed.
type resolved struct {
	Config
	network string // "udp" (dual-stack), "udp4" or "udp6"
	addr    netip.AddrPort
}

func (c Config) resolve(gomaxprocs int) (resolved, error) {
	r := resolved{Config: c}
	network, ap, err := ParseAddr(c.Addr)
	if err != nil {
		return r, err
	}
	r.network, r.addr = network, ap
	if r.Shards == 0 {
		r.Shards = gomaxprocs
	}
	if r.Shards < 1 {
		return r, &ConfigError{"shards", strconv.Itoa(c.Shards), "must be at least 1", "omit --shards for one shard per CPU"}
	}
	if r.Batch == 0 {
		r.Batch = DefaultBatch
	}
	if r.Batch < 1 || r.Batch > MaxBatch {
		return r, &ConfigError{"batch", strconv.Itoa(c.Batch), fmt.Sprintf("must be between 1 and %d", MaxBatch), ""}
	}
	if r.MaxPacket == 0 {
		r.MaxPacket = DefaultMaxPacket
	}
	if r.MaxPacket < 1 || r.MaxPacket > 65535 {
		return r, &ConfigError{"max-packet", strconv.Itoa(c.MaxPacket), "must be between 1 and 65535", "a UDP datagram carries at most 65507 bytes over IPv4"}
	}
	if r.RcvBuf == 0 {
		r.RcvBuf = DefaultRcvBuf
	}
	if r.RcvBuf == KernelDefault {
		r.RcvBuf = 0
	}
	if r.RcvBuf < 0 {
		return r, &ConfigError{"rcvbuf", strconv.Itoa(c.RcvBuf), "must not be negative", ""}
	}
	if r.SndBuf < 0 {
		return r, &ConfigError{"sndbuf", strconv.Itoa(c.SndBuf), "must not be negative", "0 keeps the kernel default"}
	}
	if !r.UDP && !r.TCP {
		r.UDP = true
	}
	if r.MaxConns == 0 {
		r.MaxConns = DefaultMaxConns
	}
	if r.MaxConns < 1 {
		return r, &ConfigError{"max-conns", strconv.Itoa(c.MaxConns), "must be at least 1", ""}
	}
	if r.IdleTimeout == 0 {
		r.IdleTimeout = DefaultIdleTimeout
	}
	if r.WriteTimeout == 0 {
		r.WriteTimeout = DefaultWriteTimeout
	}
	if r.IdleTimeout < 0 {
		return r, &ConfigError{"idle-timeout", r.IdleTimeout.String(), "timeouts must be positive", ""}
	}
	if r.WriteTimeout < 0 {
		return r, &ConfigError{"write-timeout", r.WriteTimeout.String(), "timeouts must be positive", ""}
	}
	switch r.Steer {
	case "":
		r.Steer = SteerHash
	case SteerHash, SteerRandom:
	case SteerCPU:
		if !r.Pin {
			return r, &ConfigError{"steer", "cpu", "needs the shards pinned", "add --pin (one shard per CPU)"}
		}
	default:
		return r, &ConfigError{"steer", c.Steer, "unknown steering", "use hash, cpu or random"}
	}
	switch r.TCPShape {
	case "":
		r.TCPShape = defaultTCPShape
	case TCPShapeLoop, TCPShapeGoroutines:
	default:
		return r, &ConfigError{"tcp-shape", c.TCPShape, "unknown shape", "use loop or goroutines"}
	}
	if r.MaxFrame == 0 {
		r.MaxFrame = DefaultMaxFrame
	}
	if r.MaxFrame < 1 || r.MaxFrame > 1<<24 {
		return r, &ConfigError{"max-frame", strconv.Itoa(c.MaxFrame), "must be between 1 and 16777216", ""}
	}
	// The defaults follow MaxFrame, so they always fit; only values given
	// can be too small.
	r.MaxConnMemory, r.MaxShardMemory = TCPMemory(r.MaxFrame, r.MaxConnMemory, r.MaxShardMemory)
	if need := MinConnMemory(r.MaxFrame); r.MaxConnMemory < need {
		return r, &ConfigError{"max-conn-memory", strconv.Itoa(c.MaxConnMemory), fmt.Sprintf("must hold one frame and one message's replies: at least %d with --max-frame %d", need, r.MaxFrame), "raise --max-conn-memory or lower --max-frame"}
	}
	if r.MaxShardMemory < r.MaxConnMemory {
		return r, &ConfigError{"max-shard-memory", strconv.Itoa(c.MaxShardMemory), fmt.Sprintf("must be at least --max-conn-memory (%d)", r.MaxConnMemory), "raise --max-shard-memory or lower --max-conn-memory"}
	}
	if r.MaxConnsPerIP == 0 {
		r.MaxConnsPerIP = DefaultConnsPerIP(r.MaxConns)
	}
	if r.MaxConnsPerIP < 1 {
		return r, &ConfigError{"max-conns-per-ip", strconv.Itoa(c.MaxConnsPerIP), "must be at least 1", "set it to --max-conns for no per-address limit"}
	}
	if r.NewHandler == nil {
		r.NewHandler = func(int) packet.Handler { return packet.Echo{} }
	}
	if r.Logger == nil {
		r.Logger = zap.NewNop()
	}
	return r, nil
}

// ParseAddr parses a listen address: ":PORT", "IPv4:PORT" or "[IPv6]:PORT".
// It returns the network to bind ("udp" for a dual-stack wildcard, "udp4" or
// "udp6") and the address. Host names are refused: a daemon that resolves
// names at start binds to whatever DNS said that day.
func ParseAddr(s string) (network string, ap netip.AddrPort, err error) {
	bad := func(problem, hint string) (string, netip.AddrPort, error) {
		return "", netip.AddrPort{}, &ConfigError{"addr", strconv.Quote(s), problem, hint}
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
