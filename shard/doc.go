// Package shard is shardd's sharding core: it binds one SO_REUSEPORT UDP
// socket per shard on a single address and serves each socket from its own
// goroutine, locked to an OS thread and optionally pinned to a CPU.
//
// # Model
//
// The kernel hashes every datagram's 4-tuple to one socket of the reuseport
// group, so shards share nothing: no reader, no lock, no counter. Each shard
// loops over receive a batch (recvmmsg), hand each datagram to its own
// packet.Handler, send the queued replies in one batch (sendmmsg). All
// buffers are allocated when the shard is built; the loop allocates nothing
// per datagram. With UDP GRO ([Config.GRO]) the kernel may put several
// datagrams of one flow in one received buffer; the shard splits it in
// place and hands each datagram to the handler as if it had come alone.
//
// The hash is per flow: a few heavy flows spread unevenly, and one flow
// always lands on one shard. Many clients (DNS, syslog from many hosts) spread
// well.
//
// # Lifecycle
//
// [Listen] binds every shard's socket and returns at once, so an address in
// use or a missing permission is reported before anything runs, [Group.Addr]
// is known (port 0 picks one port for all shards) and datagrams queue in the
// kernel until [Group.Serve] starts reading. [Group.Shutdown] stops reading,
// serves the batch in hand and whatever is already queued in the sockets,
// sends the replies and closes; [Group.Close] closes at once.
//
// # TLS
//
// A Config with TLS set serves TLS over TCP (DNS over TLS, RFC 7858;
// syslog over TLS, RFC 5425): one SO_REUSEPORT listener per shard, as for
// TCP, with the handler's framing inside TLS unchanged. It runs on the
// goroutine shape only: crypto/tls works on a net.Conn, and the epoll loop
// would need a record layer of its own, which shardd does not have, so
// Listen picks TCPShapeGoroutines for a TLS group and refuses
// TCPShapeLoop. TLS 1.2 (ECDHE with an AEAD only) and 1.3 are offered
// ([ServerTLS]). Each connection handshakes within TLSHandshakeTimeout
// before its first frame; --max-conns, the per-address limit, eviction
// and the memory bounds apply from the accept on (the memory bounds cover
// the plaintext buffers; crypto/tls's own record buffers are extra). The
// certificate comes from a [CertStore], swapped atomically on Reload or
// when Watch sees its files change; a pair that does not load leaves the
// one in use serving; a [CAStore] does the same for the client CAs of
// mutual TLS ([CAStore.Require]). Session tickets are encrypted with
// [TicketKeys], shared by every shard of the Config, rotated by Run and
// handed to another process with State and Restore. Upgrades hand the TLS
// listeners over like the TCP ones ("tcp/N" in Files and Inherit: TLS
// lives in the process, not the socket). The handshakes are counted per
// shard by result, version, cipher suite and resumption
// (metrics.Counts.TLSHandshakes, TLSVersions, TLSCiphers, TLSResumed), on
// shards whose snapshots have Proto "tls".
//
// # AF_XDP
//
// With [Config.XDP] each shard also owns one AF_XDP socket per interface,
// bound to receive queue i for shard i, and an XDP program on the
// interface redirects the UDP datagrams to the group's port and address
// into them; the shard polls its UDP socket and its AF_XDP sockets
// together, builds the same packet.Packet from each frame and sends the
// replies as frames it builds (a reply over the MTU leaves by the UDP
// socket, which fragments it). Everything else on the interface passes to
// the kernel. Queues past the shards pass to the kernel (the UDP sockets);
// shards past the queues serve their UDP socket only. Such datagrams
// bypass netfilter and packet sockets (tcpdump). Each interface's counters
// are an extra snapshot per shard (Proto "xdp", Listener "ADDR@IFACE")
// with the kernel's ring counts. An upgrade hands the attachment over
// (Files: "xdp/IFACE"): the new group swaps its program in, and each shard
// binds its queue once the old process has let go; meanwhile the queue's
// datagrams go to the shared UDP sockets.
//
// # Platforms
//
// Linux gets batched I/O over preallocated mmsghdr arrays, the local address of
// each datagram on wildcard listeners (IP_PKTINFO, so replies leave from the
// address the client asked), UDP GRO, CPU pinning, forced buffer sizes and
// kernel drop counts. Elsewhere the same code runs one datagram per call with the standard
// library.
//
// BUG(shardd): off Linux, a graceful stop cannot drain the socket queues
// (the portable path has no non-blocking read), so what is queued at
// Shutdown is left to the kernel.
package shard
