// Package packet defines what a shard hands to protocol code: a received
// message ([Packet]), the place to queue replies ([ReplyWriter]) and the
// [Handler] interface that connects the two. It also holds the built-in
// handlers ([Echo], [Discard]).
//
// The package knows nothing of sockets, threads or metrics: a shard owns one
// Handler and one ReplyWriter, calls ServePacket once per datagram on its own
// locked goroutine, and sends what was queued in one batch. Handlers therefore
// keep per-shard state without locks, must not block, and must not retain
// Packet.Data or the ReplyWriter after they return.
package packet
