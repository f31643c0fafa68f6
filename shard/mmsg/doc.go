// Package mmsg is shardd's one codec for Linux's batched datagram calls,
// recvmmsg(2) and sendmmsg(2): the mmsghdr, iovec, sockaddr and control
// arrays of a batch, built once ([Batch]); the sockaddr and
// IP_PKTINFO/IPV6_PKTINFO encodings, read and written in place; UDP generic
// receive offload ([SetGRO]; the UDP_GRO segment size read with the local
// address, [ParseRecvControl]; a coalesced buffer's datagrams, [Split]); the calls
// themselves on a descriptor ([Batch.Recv], [Batch.Send]) or, for a
// connected socket, through its syscall.RawConn and Go's netpoller ([Conn]).
// Nothing in it allocates per datagram.
//
// It is hand-written on purpose. golang.org/x/net's batch API
// (ipv4.PacketConn.ReadBatch and WriteBatch, and ipv6's) makes the same
// calls but allocates per datagram, a net.UDPAddr among them
// (golang/net#126, golang/go#26838): 2 allocations (52 B) per datagram
// received, measured with x/net v0.59.0 and Go 1.26.8, ReadBatch of 64 over
// loopback (BenchmarkRecv64 repeats the measurement beside this package's
// own receive, which allocates nothing). They would be the shard loop's
// only allocations: TestShardLoopAllocatesNothing (package shard) asserts it
// has none.
//
// Its users are the shard's receive and reply path (package shard), the load
// generator (cmd/shardload) and the side-by-side benchmarks
// (shard/internal/perf). [Batch], the PKTINFO and GRO helpers and the
// sockaddr codec are Linux-only; off Linux only [Conn] and [Split] exist,
// Conn reading and writing one datagram per call through the standard
// library.
package mmsg
