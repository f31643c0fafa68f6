package shard

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// gsoSender is a UDP socket on loopback (network "udp4" or "udp6") with
// UDP_SEGMENT set: each send longer than seg bytes leaves as datagrams of
// seg bytes, the last one shorter, as wireguard-go and quic-go send. Over
// loopback a receiver with UDP_GRO gets such a send as one coalesced buffer;
// one without gets the datagrams one by one (the kernel splits them).
func gsoSender(t *testing.T, network string, seg int) *net.UDPConn {
	t.Helper()
	ip := net.IPv4(127, 0, 0, 1)
	if network == "udp6" {
		ip = net.IPv6loopback
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	c = closedAtEnd(t, c, err)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Skipf("the kernel refuses UDP_SEGMENT (Linux 4.18+): %v", serr)
	}
	_ = c.SetReadBuffer(4 << 20)
	return c
}

// gsoPayload is the bytes of one GSO send of count datagrams of seg bytes
// and a last one of last bytes (0: none), each filled with its own tag so
// that every echo can be matched: the round r and the datagram's index.
func gsoPayload(r, seg, count, last int) (buf []byte, datagrams []string) {
	for k := 0; k <= count; k++ {
		l := seg
		if k == count {
			if last == 0 {
				break
			}
			l = last
		}
		d := bytes.Repeat([]byte{byte('a' + k%26)}, l)
		d[0] = byte(r)
		buf = append(buf, d...)
		datagrams = append(datagrams, string(d))
	}
	return buf, datagrams
}

// readEchoes reads n datagrams on c and returns them, sorted, with the
// addresses they came from.
func readEchoes(t *testing.T, c *net.UDPConn, n int) ([]string, map[netip.AddrPort]int) {
	t.Helper()
	var got []string
	from := map[netip.AddrPort]int{}
	buf := make([]byte, 1<<16)
	for len(got) < n {
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		k, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d echoes: %v", len(got), n, err)
		}
		got = append(got, string(buf[:k]))
		from[netip.AddrPortFrom(src.Addr().Unmap(), src.Port())]++
	}
	sort.Strings(got)
	return got, from
}

// groModes runs f with GRO on and off.
func groModes(t *testing.T, f func(t *testing.T, mode Offload)) {
	for _, mode := range []Offload{OffloadOn, OffloadOff} {
		t.Run("gro="+mode.String(), func(t *testing.T) { f(t, mode) })
	}
}

// shard0 is the counters of a one-shard group's shard.
func shard0(g *Group) metrics.Snapshot { return g.Stats(nil)[0] }

// TestGROEchoExact sends, in one flow per sender, GSO sends of 7 datagrams
// of 100 bytes and a last one of 37, each followed by a lone datagram of
// 60 bytes, to an echo group with GRO on and off, over IPv4, IPv6 and a
// dual-stack wildcard listener (whose replies must leave from the address
// each datagram was sent to: pktinfo). Every datagram comes back byte for
// byte from that address, and the counters are exact: datagrams, not
// buffers. With GRO on each GSO send arrives as one buffer of 8 datagrams
// (loopback hands the GSO buffer over whole), which the GRO histogram shows;
// with it off every buffer is one datagram.
func TestGROEchoExact(t *testing.T) {
	const rounds = 5
	for _, tc := range []struct {
		name, listen string
		senders      []string // networks; each sends to its family's loopback
	}{
		{"ipv4", "127.0.0.1:0", []string{"udp4"}},
		{"ipv6", "[::1]:0", []string{"udp6"}},
		{"wildcard-pktinfo", ":0", []string{"udp4", "udp6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groModes(t, func(t *testing.T, mode Offload) {
				g := startGroup(t, Config{Addr: tc.listen, Shards: 1, GRO: mode})
				if g.Info().GRO != (mode == OffloadOn) {
					t.Fatalf("Info().GRO = %v with GRO %v", g.Info().GRO, mode)
				}
				for _, network := range tc.senders {
					echoGSO(t, g, network, rounds)
				}
				want := uint64(rounds * 9 * len(tc.senders))
				waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == want })
				c := shard0(g)
				bytes := uint64(rounds * (7*100 + 37 + 60) * len(tc.senders))
				if c.RxPackets != want || c.RxBytes != bytes || c.TxBytes != bytes || c.Truncated != 0 || c.HandlerErrors != 0 || c.SendErrors != 0 {
					t.Fatalf("counters %+v, want %d datagrams of %d bytes in and out", c.Counts, want, bytes)
				}
				// With GRO off the GRO histogram observes nothing; the
				// buffers are counted all the same.
				var gro [metrics.BatchBuckets]uint64
				buffers := want
				if mode == OffloadOn {
					gro[0], gro[3] = want/9, want/9 // the plain datagrams; the GSO sends (8: le=8)
					buffers = 2 * want / 9
				}
				if c.GROSegments != gro || c.RxBuffers != buffers {
					t.Fatalf("datagrams per buffer %v in %d buffers, want %v in %d", c.GROSegments, c.RxBuffers, gro, buffers)
				}
			})
		})
	}
}

// echoGSO sends rounds of a GSO send and a plain datagram from a new
// socket of network to g and checks the echoes and where they came from.
func echoGSO(t *testing.T, g *Group, network string, rounds int) {
	t.Helper()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	if network == "udp6" {
		to = netip.AddrPortFrom(netip.IPv6Loopback(), groupPort(g))
	}
	c := gsoSender(t, network, 100)
	var sent []string
	for r := range rounds {
		buf, ds := gsoPayload(r, 100, 7, 37)
		plain := bytes.Repeat([]byte{'p'}, 60) // under the segment size: one datagram
		plain[0] = byte(r)
		if _, err := c.WriteToUDPAddrPort(buf, to); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(plain, to); err != nil {
			t.Fatal(err)
		}
		sent = append(append(sent, ds...), string(plain))
	}
	sort.Strings(sent)
	got, from := readEchoes(t, c, len(sent))
	if fmt.Sprint(got) != fmt.Sprint(sent) {
		t.Fatalf("%s: echoes differ from what was sent (%d datagrams)", network, len(sent))
	}
	if len(from) != 1 || from[to] != len(sent) {
		t.Fatalf("%s: echoes came from %v, want all from %v", network, from, to)
	}
}

// TestGROTruncatedSegments: with MaxPacket 100, a GSO send of four 150-byte
// datagrams and a 20-byte one counts four truncated and hands the handler
// the 20-byte one only, with GRO on (one buffer, split in a 64 KiB slot)
// and off (five datagrams), with the same counters.
func TestGROTruncatedSegments(t *testing.T) {
	groModes(t, func(t *testing.T, mode Offload) {
		rec := &recorder{}
		g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, MaxPacket: 100, GRO: mode,
			NewHandler: func(int) packet.Handler { return rec }})
		c := gsoSender(t, "udp4", 150)
		buf, ds := gsoPayload(1, 150, 4, 20)
		if _, err := c.WriteToUDPAddrPort(buf, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "5 datagrams", func() bool { return shard0(g).RxPackets == 5 })
		s := shard0(g)
		if s.Truncated != 4 || s.RxBytes != 4*150+20 {
			t.Fatalf("truncated %d, rx bytes %d; want 4 and %d", s.Truncated, s.RxBytes, 4*150+20)
		}
		if mode == OffloadOn && s.GROSegments[3] != 1 {
			t.Fatalf("datagrams per buffer %v: the send did not arrive coalesced", s.GROSegments)
		}
		if handled := rec.handled(); len(handled) != 1 || handled[0] != ds[4] {
			t.Fatalf("handler saw %d datagrams (%q), want the last 20 bytes only", len(handled), handled)
		}
	})
}

// TestGROMoreDatagramsThanBatch: with Batch 2 a batch of two coalesced
// buffers of 41 datagrams each holds 82 datagrams, far more replies than
// the reply queue takes (Batch): the shard sends what it holds and goes on,
// and every echo arrives.
func TestGROMoreDatagramsThanBatch(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, Batch: 2, GRO: OffloadOn})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	c := gsoSender(t, "udp4", 10)
	var sent []string
	const rounds = 6
	for r := range rounds {
		buf, ds := gsoPayload(r, 10, 40, 5)
		if _, err := c.WriteToUDPAddrPort(buf, to); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, ds...)
	}
	sort.Strings(sent)
	got, _ := readEchoes(t, c, len(sent))
	if fmt.Sprint(got) != fmt.Sprint(sent) {
		t.Fatal("echoes differ from what was sent")
	}
	waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == rounds*41 })
	if s := shard0(g); s.RxPackets != rounds*41 || s.GROSegments[6] != rounds || s.SendErrors != 0 {
		t.Fatalf("counters %+v, want %d datagrams in %d buffers of 41 (le=64)", s.Counts, rounds*41, rounds)
	}
}

// TestGROHandlerPanicCostsOneDatagram: a handler that panics on one
// datagram of a coalesced buffer loses that datagram only; the rest of the
// buffer is served.
func TestGROHandlerPanicCostsOneDatagram(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, GRO: OffloadOn,
		NewHandler: func(int) packet.Handler {
			return packet.HandlerFunc(func(w *packet.ReplyWriter, p *packet.Packet) error {
				if p.Data[1] == 'c' {
					panic("the third datagram")
				}
				_, err := w.Write(p.Data)
				return err
			})
		}})
	c := gsoSender(t, "udp4", 50)
	buf, ds := gsoPayload(0, 50, 5, 0)
	if _, err := c.WriteToUDPAddrPort(buf, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, ds[:2]...), ds[3:]...)
	sort.Strings(want)
	got, _ := readEchoes(t, c, 4)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("echoes differ from the datagrams that did not panic")
	}
	waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == 4 })
	if s := shard0(g); s.RxPackets != 5 || s.HandlerErrors != 1 || s.GROSegments[3] != 1 {
		t.Fatalf("counters %+v, want 5 datagrams in one buffer, one handler error", s.Counts)
	}
}

// groOnSocket reads UDP_GRO back from shard 0's socket.
func groOnSocket(t *testing.T, g *Group) bool {
	t.Helper()
	var v int
	var gerr error
	if err := g.shards[0].rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}

// TestGROModes: auto turns UDP_GRO on here (Linux 5.0+), off turns it off
// on an inherited socket that had it on (once idle), and on cannot be had on the
// portable one-datagram path (a one-line start-up error), where auto leaves
// it off.
func TestGROModes(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1})
	if !g.Info().GRO || !groOnSocket(t, g) {
		t.Fatalf("GRO auto: Info().GRO %v; the kernel supports it", g.Info().GRO)
	}
	// An inherited socket with UDP_GRO on, served with GRO off.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	c = closedAtEnd(t, c, err)
	rc, _ := c.SyscallConn()
	_ = rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) })
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	// It stays on until the socket's queue, which could hold coalesced
	// buffers, is seen empty (TestGROOffAfterUpgradeKeepsQueuedBuffersWhole).
	off := startGroup(t, Config{Addr: c.LocalAddr().String(), Shards: 1, GRO: OffloadOff, Inherit: map[string]*os.File{"udp/0": f}})
	waitFor(t, "GRO off to turn UDP_GRO off on an idle inherited socket", func() bool { return !groOnSocket(t, off) })
	_, err = Listen(Config{Addr: "127.0.0.1:0", Shards: 1, GRO: OffloadOn, noBatchIO: true})
	var le *ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "GRO auto") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("GRO on without batched receives: %v, want a one-line *ListenError", err)
	}
	portable := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, noBatchIO: true})
	if portable.Info().GRO || groOnSocket(t, portable) {
		t.Fatal("GRO auto on the portable path turned UDP_GRO on")
	}
	var m Offload
	if err := m.UnmarshalText([]byte("sometimes")); err == nil {
		t.Fatal("Offload accepted \"sometimes\"")
	}
	if err := (Config{Addr: ":0", GRO: OffloadOff + 1}).Validate(); err == nil {
		t.Fatal("Validate accepted an unknown Offload")
	}
}

// TestGROLoopAllocatesNothing drives the real loop (loopRig) with a GSO
// client: each step sends 4 buffers of 16 datagrams of 64 bytes, which the
// shard receives coalesced (GRO auto is on here), splits and serves; the
// loop allocates nothing, and the GRO histogram proves the split path ran.
func TestGROLoopAllocatesNothing(t *testing.T) {
	for _, tc := range loopCases {
		t.Run(tc.name, func(t *testing.T) {
			const sends, segs = 4, 16
			r := newLoopRig(t, tc.listen, tc.h, sends, segs*64)
			if !r.s.gro {
				t.Fatal("GRO auto left GRO off on a kernel that has it")
			}
			rc, _ := r.client.SyscallConn()
			var serr error
			_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, 64) })
			if serr != nil {
				t.Skip("no UDP_SEGMENT:", serr)
			}
			step := func() {
				if failed, err := r.tx.writeBatch(r.batch, nil); failed != 0 || err != nil {
					t.Fatalf("client: %d of %d not sent: %v", failed, sends, err)
				}
				for want := r.s.counts.RxPackets + sends*segs; r.s.counts.RxPackets < want; {
					n, err := r.s.bc.readBatch(r.s.msgs)
					if err != nil {
						t.Fatal(err)
					}
					r.s.serveBatch(n)
				}
				for i := 0; r.echo && i < sends*segs; i++ {
					if _, _, err := r.client.ReadFromUDPAddrPort(r.rxBuf); err != nil {
						t.Fatal(err)
					}
				}
			}
			step()
			if allocs := testing.AllocsPerRun(50, step); allocs != 0 {
				t.Fatalf("%v allocations per step of %d coalesced datagrams, want 0", allocs, sends*segs)
			}
			c := r.s.ctr.Load()
			if c.RxPackets != 52*sends*segs || c.GROSegments[4] != 52*sends || (r.echo && c.TxPackets != c.RxPackets) {
				t.Fatalf("counters after the run: %d datagrams, per buffer %v, %d replies", c.RxPackets, c.GROSegments, c.TxPackets)
			}
		})
	}
}

// BenchmarkServeGRO measures the split and handler path alone, no system
// calls: a batch of 64 coalesced buffers of 64 datagrams of 64 bytes served
// to a discarding handler; op is one datagram.
func BenchmarkServeGRO(b *testing.B) {
	const batch, segs, size = 64, 64, 64
	h := packet.Discard{}
	s := &shard{handler: h, maxPacket: DefaultMaxPacket, msgs: newSlots(batch, DefaultMaxPacket, true),
		replies: packet.NewReplyQueue(batch, batch*DefaultMaxPacket, DefaultMaxPacket)}
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch * segs {
		for j := range s.msgs {
			s.msgs[j].src = src
			s.msgs[j].set(segs*size, size)
		}
		s.serveBatch(batch)
	}
	if s.counts.RxPackets < uint64(b.N) {
		b.Fatalf("served %d datagrams of %d", s.counts.RxPackets, b.N)
	}
}
