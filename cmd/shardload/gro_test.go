package main

import (
	"testing"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard"
)

// TestEchoOfGSORepliesWithGRO: shardload sends GSO bursts to an echo
// server that replies with GSO (on) or not (off); its receivers have
// UDP_GRO on and split what the kernel coalesced. Every reply is matched
// exactly once: shardload's count is the server's, nothing lost or
// unexpected; with server GSO the replies arrived in fewer buffers than
// replies (coalesced), and the server's counters show the GSO sends.
func TestEchoOfGSORepliesWithGRO(t *testing.T) {
	for _, mode := range []shard.Offload{shard.OffloadOn, shard.OffloadOff} {
		t.Run("server-gso-"+mode.String(), func(t *testing.T) {
			srv := startServerConfig(t, shard.Config{Addr: "127.0.0.1:0", Shards: 2, GSO: mode, NewHandler: func(int) packet.Handler { return packet.Echo{} }})
			s, _ := runLoad(t, "--mode", "echo", "--duration", "1s", "--rate", "20000", "--flows", "4", "--gso", "on", "--size", "200",
				"--wait", waitTimeout.String(), "--metrics", srv.metricsURL, srv.addr)
			var tx, gso uint64
			for _, st := range srv.g.Stats(nil) {
				tx += st.TxPackets
				gso += st.TxGSODatagrams
			}
			if s.Received == nil || *s.Received != tx || *s.Lost != 0 || s.Unexpected != 0 || s.Server.Received != s.Sent {
				t.Fatalf("sent %d, server got %d and sent %d, shardload matched %v (lost %v, unexpected %d)", s.Sent, s.Server.Received, tx, s.Received, s.Lost, s.Unexpected)
			}
			if s.ReplyBuffers == nil {
				t.Fatal("the echo receivers did not enable UDP_GRO")
			}
			if mode == shard.OffloadOn && (gso == 0 || *s.ReplyBuffers >= *s.Received) {
				t.Fatalf("server GSO on: %d replies by GSO, %d replies in %d buffers; want some GSO and fewer buffers", gso, *s.Received, *s.ReplyBuffers)
			}
			if mode == shard.OffloadOff && gso != 0 {
				t.Fatalf("server GSO off, yet %d replies went by GSO", gso)
			}
			t.Logf("%d replies in %d buffers, %d sent by server GSO", *s.Received, *s.ReplyBuffers, gso)
		})
	}
}
