// Package packet defines what a shard hands to protocol code: a received
// message ([Packet]), the place to write replies ([ReplyWriter]) and the
// [Handler] interface that connects the two. It also holds the built-in
// handlers ([Echo], [Discard]) and the stream framings ([Framer]).
//
// The package knows nothing of sockets, threads or metrics: a shard owns one
// Handler and one [ReplyQueue], calls ServePacket once per datagram on its own
// locked goroutine with the queue's ReplyWriter, and sends what was queued in
// one batch. The writer is the handler's whole view of the queue: it appends
// replies to the packet being served and nothing else. Handlers keep
// per-shard state without locks, must not block, and must not retain
// Packet.Data or the ReplyWriter after they return.
package packet
