package metrics

import (
	"crypto/tls"
	"math/bits"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/cpu"
)

// BatchBuckets is the number of batch-size histogram buckets: upper bounds
// 1, 2, 4, ... 1024 datagrams per receive call.
const BatchBuckets = 11

// BatchBucket returns the histogram bucket of a receive call that returned n
// datagrams (n >= 1): the smallest i with n <= 1<<i.
func BatchBucket(n int) int {
	if n <= 1 {
		return 0
	}
	b := bits.Len(uint(n - 1))
	if b >= BatchBuckets {
		return BatchBuckets - 1
	}
	return b
}

// GSOBuckets is the number of buckets of the GSO-send histogram: upper
// bounds 2, 4, ... 64 datagrams per send (a GSO send carries at least two,
// and at most 64, the kernel's UDP_MAX_SEGMENTS).
const GSOBuckets = 6

// GSOBucket returns the histogram bucket of a GSO send of n datagrams
// (2 <= n <= 64): the smallest i with n <= 2<<i.
func GSOBucket(n int) int {
	return min(max(bits.Len(uint(n-1))-1, 0), GSOBuckets-1)
}

// Counts is one shard's counters as plain numbers. The shard keeps a Counts of
// its own, updates it per datagram without atomics, and publishes it into its
// Shard block once per batch.
type Counts struct {
	RxPackets, RxBytes uint64               // datagrams (or frames) received, and their length
	TxPackets, TxBytes uint64               // replies sent (UDP: counted as the send starts; one the kernel refuses is also in SendErrors)
	Truncated          uint64               // datagrams longer than MaxPacket: counted, never handled
	HandlerErrors      uint64               // ServePacket returned an error or panicked
	SendErrors         uint64               // replies the kernel refused
	RxErrors           uint64               // receive calls that failed
	Batches            uint64               // receive calls that returned at least one datagram
	BatchSizes         [BatchBuckets]uint64 // receive calls by buffers returned (BatchBucket)
	// Buffers the receive calls returned (the batch histogram's sum): a
	// datagram each, or with UDP GRO several coalesced datagrams of a flow.
	RxBuffers uint64
	// On a shard with UDP GRO on only (with it off nothing is observed):
	// the received buffers by the datagrams each held (BatchBucket), 1 but
	// for the buffers GRO coalesced. Their count is RxBuffers, their sum
	// RxPackets.
	GROSegments [BatchBuckets]uint64
	// UDP replies sent with GSO (UDP_SEGMENT): the sends by the datagrams
	// each carried (GSOBucket), and those datagrams (also in TxPackets),
	// counted as TxPackets is, when handed to the kernel: a send it
	// refuses (its replies then go one by one) is counted too.
	TxGSOSends     [GSOBuckets]uint64
	TxGSODatagrams uint64

	// Stream transports (TCP) only.
	Accepted       uint64               // connections accepted
	Closed         [CloseReasons]uint64 // connections closed, by reason (a CloseReason)
	DiscardedBytes uint64               // bytes read but not part of a complete message when the connection closed
	// Replies queued for a connection that closed before the kernel took
	// them (write timeout, reset, a stop that ran out of time): counted
	// here instead of in TxPackets/TxBytes, which count written replies only.
	UnsentPackets, UnsentBytes uint64
	// Frames that carry no message (a zero length prefix): consumed, never
	// handled, not in RxPackets, and they do not extend the idle timeout.
	EmptyFrames  uint64
	AcceptErrors [AcceptErrnos]uint64 // failed accept calls, by errno (an AcceptErrno)

	// TLS listeners only.
	TLSHandshakes [TLSResults]uint64   // handshakes by outcome (a TLSResult)
	TLSResumed    uint64               // successful handshakes that resumed a session (no full handshake)
	TLSVersions   [TLSVersionsN]uint64 // successful handshakes by protocol version (a TLSVersion)
	TLSCiphers    [TLSCiphersN]uint64  // successful handshakes by cipher suite (a TLSCipher)
}

// TLSResult is how a TLS handshake ended; it indexes Counts.TLSHandshakes,
// and its String is the result label value.
type TLSResult uint8

// TLS handshake outcomes.
const (
	TLSOK             TLSResult = iota // done: the connection is served
	TLSTimeout                         // not done within --tls-handshake-timeout
	TLSBadCertificate                  // the client refused our certificate, or sent a bad one
	TLSProtocol                        // no common version, suite or ALPN protocol, or not TLS at all
	TLSEOF                             // the client closed during the handshake
	TLSShutdown                        // the server stopped during the handshake
	TLSError                           // anything else (reset, evicted)
)

// TLSResults is the number of TLSResult values.
const TLSResults = int(TLSError) + 1

var tlsResultNames = [TLSResults]string{"ok", "timeout", "bad_certificate", "protocol", "eof", "shutdown", "error"}

// String returns the result label value of shardd_tls_handshakes_total.
func (r TLSResult) String() string {
	if int(r) < TLSResults {
		return tlsResultNames[r]
	}
	return "TLSResult(" + strconv.Itoa(int(r)) + ")"
}

// TLSVersion is the protocol version of a TLS connection; it indexes
// Counts.TLSVersions, and its String is the version label value.
type TLSVersion uint8

// TLS versions served.
const (
	TLS12 TLSVersion = iota
	TLS13
)

// TLSVersionsN is the number of TLSVersion values.
const TLSVersionsN = int(TLS13) + 1

// String returns the version label value of shardd_tls_connections_total.
func (v TLSVersion) String() string {
	switch v {
	case TLS12:
		return "1.2"
	case TLS13:
		return "1.3"
	}
	return "TLSVersion(" + strconv.Itoa(int(v)) + ")"
}

// TLSCipher is the cipher suite of a TLS connection, one of the fixed list
// shardd offers (TLS 1.3's three, then shard.TLS12Suites) or TLSCipherOther;
// it indexes Counts.TLSCiphers, and its String is the cipher label value.
type TLSCipher uint8

// tlsCipherSuites are the suites that have a TLSCipher of their own, in
// index order: the label's values are this list and "other", no more.
var tlsCipherSuites = [...]uint16{
	tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSCipherOther is any suite not in the list (none while the server
// offers only those).
const TLSCipherOther = TLSCipher(len(tlsCipherSuites))

// TLSCiphersN is the number of TLSCipher values.
const TLSCiphersN = int(TLSCipherOther) + 1

// TLSCipherOf is the TLSCipher of a suite's IANA number
// (tls.ConnectionState.CipherSuite).
func TLSCipherOf(id uint16) TLSCipher {
	for i, s := range tlsCipherSuites {
		if s == id {
			return TLSCipher(i)
		}
	}
	return TLSCipherOther
}

// String returns the cipher label value of shardd_tls_cipher_connections_total:
// the suite's IANA name (e.g. TLS_AES_128_GCM_SHA256), or "other".
func (c TLSCipher) String() string {
	if c < TLSCipherOther {
		return tls.CipherSuiteName(tlsCipherSuites[c])
	}
	return "other"
}

// AcceptErrno is the kind of a failed accept call; it indexes
// Counts.AcceptErrors, and its String is the errno label value.
type AcceptErrno uint8

// Accept errors by errno.
const (
	AcceptEMFILE AcceptErrno = iota // the process is out of descriptors
	AcceptENFILE                    // the system is out of descriptors
	AcceptENOBUFS
	AcceptENOMEM
	AcceptOther
)

// AcceptErrnos is the number of AcceptErrno values.
const AcceptErrnos = int(AcceptOther) + 1

var acceptErrnoNames = [AcceptErrnos]string{"EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "other"}

// String returns the errno label value of shardd_tcp_accept_errors_total.
func (e AcceptErrno) String() string {
	if int(e) < AcceptErrnos {
		return acceptErrnoNames[e]
	}
	return "AcceptErrno(" + strconv.Itoa(int(e)) + ")"
}

// CloseReason is why a connection closed; it indexes Counts.Closed, and
// its String is the reason label value.
type CloseReason uint8

// Why a connection closed.
const (
	CloseEOF           CloseReason = iota // the client closed
	CloseIdle                             // no complete message within the idle timeout (also slow clients)
	CloseLimit                            // over --max-conns: accepted and closed at once
	CloseFrameTooLarge                    // a frame over --max-frame, or unframeable bytes
	CloseError                            // a read or write error (reset)
	CloseWriteTimeout                     // the client did not read its replies in time
	CloseShutdown                         // the server stopped
	ClosePerIP                            // over --max-conns-per-ip: accepted and closed at once
	CloseEvicted                          // the shard was full: the connection idle the longest made room for a new one
)

// CloseReasons is the number of CloseReason values.
const CloseReasons = int(CloseEvicted) + 1

var closeReasonNames = [CloseReasons]string{"eof", "idle", "limit", "frame_too_large", "error", "write_timeout", "shutdown", "per_ip_limit", "evicted"}

// String returns the reason label value of shardd_tcp_closed_total.
func (r CloseReason) String() string {
	if int(r) < CloseReasons {
		return closeReasonNames[r]
	}
	return "CloseReason(" + strconv.Itoa(int(r)) + ")"
}

// Active is the number of connections open: accepted and not yet closed.
func (c *Counts) Active() uint64 {
	var closed uint64
	for _, n := range c.Closed {
		closed += n
	}
	return c.Accepted - min(closed, c.Accepted)
}

// Shard is one shard's published counters. Only the owning shard writes it
// (Publish); any goroutine may read it (Load). The padding keeps neighbouring
// shards' blocks on separate cache lines.
type Shard struct {
	_ cpu.CacheLinePad
	c [countsWords]atomic.Uint64
	_ cpu.CacheLinePad
	// The owner's alone: the Counts last published and its words in
	// block order, found through countsTable once (bind), so that
	// Publish is one loop without a call per field.
	from  *Counts
	words [countsWords]*uint64
}

// countsWords is the number of words in Counts, which holds uint64s only
// (TestPublishLoad checks), and so in countsTable (checked at init).
const countsWords = int(unsafe.Sizeof(Counts{}) / 8)

// field is one field of Counts: the words it takes in a Shard block and, if
// it is a series of its own, how the Collector exposes it. Exactly one of
// scalar and array is set.
type field struct {
	name   string                 // the Counts field
	scalar func(*Counts) *uint64  // a plain counter
	array  func(*Counts) []uint64 // an array, one word per element
	desc   *prometheus.Desc       // its counter; nil: exposed otherwise (the batch-size and GRO histograms)
	proto  string                 // exposed on shards of this transport only ("udp", "tcp"; see on); "" on every shard
	label  func(i int) string     // for an array: the value of desc's last label for element i
	off    int                    // its first word in a Shard block: set from the table's order
}

// countsTable is every field of Counts in the order of its words in a Shard
// block. Publish, Load and the Collector all walk it.
var countsTable = func() []field {
	t := []field{
		{name: "RxPackets", scalar: func(c *Counts) *uint64 { return &c.RxPackets }, desc: descRxPackets},
		{name: "RxBytes", scalar: func(c *Counts) *uint64 { return &c.RxBytes }, desc: descRxBytes},
		{name: "TxPackets", scalar: func(c *Counts) *uint64 { return &c.TxPackets }, desc: descTxPackets},
		{name: "TxBytes", scalar: func(c *Counts) *uint64 { return &c.TxBytes }, desc: descTxBytes},
		{name: "Truncated", scalar: func(c *Counts) *uint64 { return &c.Truncated }, desc: descTruncated},
		{name: "HandlerErrors", scalar: func(c *Counts) *uint64 { return &c.HandlerErrors }, desc: descHandlerErrors},
		{name: "SendErrors", scalar: func(c *Counts) *uint64 { return &c.SendErrors }, desc: descSendErrors},
		{name: "RxErrors", scalar: func(c *Counts) *uint64 { return &c.RxErrors }, desc: descRxErrors},
		{name: "Batches", scalar: func(c *Counts) *uint64 { return &c.Batches }, proto: "udp"},
		{name: "BatchSizes", array: func(c *Counts) []uint64 { return c.BatchSizes[:] }, proto: "udp"},
		{name: "RxBuffers", scalar: func(c *Counts) *uint64 { return &c.RxBuffers }, proto: "udp"},
		{name: "GROSegments", array: func(c *Counts) []uint64 { return c.GROSegments[:] }, proto: "udp"},
		{name: "TxGSOSends", array: func(c *Counts) []uint64 { return c.TxGSOSends[:] }, proto: "udp"},
		{name: "TxGSODatagrams", scalar: func(c *Counts) *uint64 { return &c.TxGSODatagrams }, proto: "udp"},
		{name: "Accepted", scalar: func(c *Counts) *uint64 { return &c.Accepted }, desc: descTCPAccepted, proto: "tcp"},
		{name: "Closed", array: func(c *Counts) []uint64 { return c.Closed[:] }, desc: descTCPClosed, proto: "tcp",
			label: func(i int) string { return CloseReason(i).String() }},
		{name: "DiscardedBytes", scalar: func(c *Counts) *uint64 { return &c.DiscardedBytes }, desc: descTCPDiscarded, proto: "tcp"},
		{name: "UnsentPackets", scalar: func(c *Counts) *uint64 { return &c.UnsentPackets }, desc: descTCPUnsent, proto: "tcp"},
		{name: "UnsentBytes", scalar: func(c *Counts) *uint64 { return &c.UnsentBytes }, desc: descTCPUnsentB, proto: "tcp"},
		{name: "EmptyFrames", scalar: func(c *Counts) *uint64 { return &c.EmptyFrames }, desc: descTCPEmpty, proto: "tcp"},
		{name: "AcceptErrors", array: func(c *Counts) []uint64 { return c.AcceptErrors[:] }, desc: descTCPAcceptErrs, proto: "tcp",
			label: func(i int) string { return AcceptErrno(i).String() }},
		{name: "TLSHandshakes", array: func(c *Counts) []uint64 { return c.TLSHandshakes[:] }, desc: descTLSHandshakes, proto: "tls",
			label: func(i int) string { return TLSResult(i).String() }},
		{name: "TLSResumed", scalar: func(c *Counts) *uint64 { return &c.TLSResumed }, desc: descTLSResumed, proto: "tls"},
		{name: "TLSVersions", array: func(c *Counts) []uint64 { return c.TLSVersions[:] }, desc: descTLSVersions, proto: "tls",
			label: func(i int) string { return TLSVersion(i).String() }},
		{name: "TLSCiphers", array: func(c *Counts) []uint64 { return c.TLSCiphers[:] }, desc: descTLSCiphers, proto: "tls",
			label: func(i int) string { return TLSCipher(i).String() }},
	}
	off := 0
	for i := range t {
		t[i].off = off
		off += t[i].words()
	}
	if off != countsWords {
		panic("metrics: countsTable has " + strconv.Itoa(off) + " words, countsWords is " + strconv.Itoa(countsWords))
	}
	return t
}()

// words is the number of words f takes.
func (f *field) words() int {
	if f.array != nil {
		var c Counts
		return len(f.array(&c))
	}
	return 1
}

// Publish stores c. It must only be called by the shard that owns s: with a
// single writer, plain atomic stores suffice and no read-modify-write is
// needed. A word that did not change is not stored: an atomic store is a
// locked exchange on amd64, while the load is a plain move, and most words
// (errors; the TCP words on a UDP shard and the batch words on a TCP one)
// stay unchanged from batch to batch. The shard passes the same Counts
// every time, and s remembers where its words are (another Counts works
// too, at the cost of finding them again).
func (s *Shard) Publish(c *Counts) {
	if c != s.from {
		s.bind(c)
	}
	for i, p := range &s.words {
		s.set(i, *p)
	}
}

// bind points s.words at the words of c.
func (s *Shard) bind(c *Counts) {
	s.from = c
	for i := range countsTable {
		f := &countsTable[i]
		if f.scalar != nil {
			s.words[f.off] = f.scalar(c)
			continue
		}
		w := f.array(c)
		for j := range w {
			s.words[f.off+j] = &w[j]
		}
	}
}

func (s *Shard) set(i int, v uint64) {
	if s.c[i].Load() != v {
		s.c[i].Store(v)
	}
}

// Load returns the last published counters.
func (s *Shard) Load() Counts {
	var c Counts
	for i := range countsTable {
		f := &countsTable[i]
		if f.scalar != nil {
			*f.scalar(&c) = s.c[f.off].Load()
			continue
		}
		w := f.array(&c)
		for j := range w {
			w[j] = s.c[f.off+j].Load()
		}
	}
	return c
}

// Snapshot is one shard's state at scrape time: its counters plus what is read
// from its socket.
type Snapshot struct {
	Listener string // the address as configured, e.g. ":5353"
	Proto    string // "udp", "tcp", "tls" (TCP with TLS) or "xdp" (UDP over AF_XDP)
	Shard    int    // index within the listener's group
	CPU      int    // the CPU the shard is pinned to, or -1
	Counts
	KernelDrops uint64 // datagrams the kernel dropped at this socket (SO_MEMINFO)
	QueueBytes  uint64 // bytes waiting in the socket's receive queue
	RcvBuf      uint64 // the socket's effective receive buffer
	Inode       uint64 // the socket's inode (UDP socket or TCP listener), 0 if unknown
	HeldBytes   uint64 // TCP: buffer bytes the shard's connections hold (input and queued replies)
	// XDP: the AF_XDP socket's ring counts (XDP_STATISTICS), on shards
	// whose Proto is "xdp" (one per shard and --xdp interface; Listener is
	// then "ADDR@IFACE").
	XDP XDPStats
}

// XDPStats are one AF_XDP socket's counts as the kernel keeps them.
type XDPStats struct {
	RxDropped     uint64 // frames dropped for want of room (RX ring or UMEM)
	RxInvalid     uint64 // invalid RX descriptors
	RxRingFull    uint64 // frames dropped because the RX ring was full
	FillRingEmpty uint64 // times the fill ring had no frame to receive into
	TxInvalid     uint64 // invalid TX descriptors
	TxRingEmpty   uint64 // sends that found the TX ring empty (once per kick)
}

// Source reports per-shard snapshots. It must be safe for concurrent use.
type Source interface {
	// Stats appends one Snapshot per shard to dst and returns it.
	Stats(dst []Snapshot) []Snapshot
}
