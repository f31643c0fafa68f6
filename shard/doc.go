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
