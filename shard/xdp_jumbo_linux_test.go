package shard

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/netnstest"
)

// TestXDPReplyOverFrameSize: on an interface with jumbo frames (MTU 9000)
// a reply that fits the MTU but not a 4 KiB UMEM frame leaves by the
// shard's UDP socket, whole, instead of being lost as a send error.
func TestXDPReplyOverFrameSize(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	p.A.IP(t, "link", "set", p.DevA, "mtu", "9000")
	p.B.IP(t, "link", "set", p.DevB, "mtu", "9000")
	g := serveBigReplies(t, p, 6000)
	snaps := g.Stats(nil)
	rx, tx := protoTotals(snaps)
	for _, s := range snaps {
		if s.SendErrors != 0 {
			t.Fatalf("%s shard %d: %d send errors", s.Proto, s.Shard, s.SendErrors)
		}
	}
	if rx["xdp"] != 2 || tx["xdp"] != 2 {
		t.Fatalf("received %v, sent %v by proto; want both requests by AF_XDP", rx, tx)
	}
}

// serveBigReplies serves a group on the pair's B end whose handler answers
// every request with the same size-byte reply, sends one small request to
// each of B's addresses from A and checks each reply byte for byte.
func serveBigReplies(t *testing.T, p *netnstest.Pair, size int) *Group {
	t.Helper()
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i * 7)
	}
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1, NewHandler: func(int) packet.Handler {
		return packet.HandlerFunc(func(w *packet.ReplyWriter, _ *packet.Packet) error {
			_, err := w.Write(big)
			return err
		})
	}})
	go func() { _ = g.Serve(context.Background()) }()
	for _, dst := range []netip.Addr{p.B4, p.B6} {
		var c *net.UDPConn
		var err error
		p.A.Run(t, func() {
			c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, groupPort(g))))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("small request")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, size+1)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != string(big) {
			t.Fatalf("reply from %v: %d bytes, %v; want the %d-byte reply", dst, n, err, size)
		}
	}
	return g
}
