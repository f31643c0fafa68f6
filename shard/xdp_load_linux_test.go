package shard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/netnstest"
)

// TestXDPLoadStillServesUDPAndStop: one shard under a continuous stream of
// datagrams through its AF_XDP socket (from namespace A, bounded in count
// and time) still answers each datagram a client sends its UDP socket on
// loopback inside B within a deadline, and a stop (Group.Shutdown) under
// that load is seen promptly: after a batch the shard skips polls while
// frames keep coming (framesSoon), but at most xdpMaxSkips in a row.
func TestXDPLoadStillServesUDPAndStop(t *testing.T) {
	const (
		udpProbes = 200
		deadline  = 10 * time.Second // per probe
		maxFlood  = 20_000_000       // datagrams, all senders
	)
	p := netnstest.NewPair(t, 1)
	g := listenXDP(t, p, Config{Addr: ":0", Shards: 1, NewHandler: func(int) packet.Handler { return packet.Echo{} }})
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	port := groupPort(g)

	// The stream: two senders in A, fire and forget, until told to stop.
	var stop atomic.Bool
	var flooded atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		var conn *net.UDPConn
		var err error
		p.A.Run(t, func() { conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, port))) })
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		unused := []rxMsg{{buf: make([]byte, 1)}}
		crc, _ := conn.SyscallConn()
		tx, err := newMmsgConn(crc, conn.LocalAddr(), unused, false)
		if err != nil {
			t.Fatal(err)
		}
		batch := make([]packet.Reply, 64) // one sendmmsg each: the ring stays full
		for j := range batch {
			batch[j] = packet.Reply{Data: fmt.Appendf(nil, "flood %d", i), Dst: netip.AddrPortFrom(p.B4, port)}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			end := time.Now().Add(120 * time.Second)
			for n := 0; n < maxFlood/2/len(batch) && !stop.Load(); n++ {
				if n%64 == 0 && time.Now().After(end) {
					return
				}
				failed, _ := tx.writeBatch(batch, nil)
				flooded.Add(int64(len(batch) - failed))
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	xdpRx := func() uint64 { rx, _ := protoTotals(g.Stats(nil)); return rx["xdp"] }
	waitFor(t, "the stream to reach the AF_XDP socket", func() bool { return xdpRx() > 10_000 })

	var client *net.UDPConn
	var err error
	p.B.Run(t, func() {
		client, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	before := xdpRx()
	buf := make([]byte, 512)
	var worst time.Duration
	for i := range udpProbes {
		msg := fmt.Appendf(nil, "probe %d", i)
		start := time.Now()
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = client.SetReadDeadline(start.Add(deadline))
		n, err := client.Read(buf)
		if err != nil || string(buf[:n]) != string(msg) {
			t.Fatalf("UDP probe %d under XDP load: %q, %v", i, buf[:max(n, 0)], err)
		}
		worst = max(worst, time.Since(start))
	}
	during := xdpRx() - before
	if during < udpProbes || stop.Load() {
		t.Fatalf("only %d datagrams came by AF_XDP while the %d UDP probes ran: the load was not continuous", during, udpProbes)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("stop under XDP load: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took > 10*time.Second {
		t.Fatalf("the stop under XDP load took %v", took)
	}
	t.Logf("xdp load: %d datagrams sent, %d by AF_XDP during the probes; %d UDP probes answered, slowest %v; stop took %v",
		flooded.Load(), during, udpProbes, worst, took)
}
