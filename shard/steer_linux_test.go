package shard

import (
	"context"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// bindForeign binds a non-blocking SO_REUSEPORT socket of type typ on
// 127.0.0.1:port, as a later socket of the same user would, until the
// test ends.
func bindForeign(t *testing.T, typ int, port uint16) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestSteerRandomSpreadsOneFlow(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, Steer: SteerRandom, NewHandler: discardHandler})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	sendFrom(t, to, 4000, -1)
	waitFor(t, "4000 counted", func() bool { return total(perShardRx(g)) == 4000 })
	for i, n := range perShardRx(g) {
		if n < 1600 || n > 2400 {
			t.Fatalf("shard %d got %d of 4000 datagrams from one flow: %v", i, n, perShardRx(g))
		}
	}
}

func TestSteerHashKeepsOneFlowOnOneShard(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, Exclusive: exclusive, NewHandler: discardHandler})
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
		sendFrom(t, to, 500, -1)
		waitFor(t, "500 counted", func() bool { return total(perShardRx(g)) == 500 })
		rx := perShardRx(g)
		if rx[0] != 500 && rx[1] != 500 {
			t.Fatalf("exclusive=%v: one flow split across shards: %v", exclusive, rx)
		}
		// And many flows still spread: no shard is starved.
		for f := 0; f < 64; f++ {
			sendFrom(t, to, 2, -1)
		}
		waitFor(t, "628 counted", func() bool { return total(perShardRx(g)) == 628 })
		if rx := perShardRx(g); rx[0] < 30 || rx[1] < 30 {
			t.Fatalf("exclusive=%v: 64 flows did not spread: %v", exclusive, rx)
		}
	}
}

// TestSteerCPU pins the shards and then a sender to each CPU in turn: on
// loopback the receive path runs on the sender's CPU, so every datagram must
// land on the shard pinned there.
func TestSteerCPU(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) < 2 {
		t.Skip("needs 2 CPUs:", cpus, err)
	}
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: len(cpus), Pin: true, Steer: SteerCPU, NewHandler: discardHandler})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	var want uint64
	for k, cpu := range cpus {
		before := perShardRx(g)
		for flow := 0; flow < 3; flow++ { // three source ports: the hash alone would scatter them
			sendFrom(t, to, 100, cpu)
		}
		want += 300
		waitFor(t, "counted", func() bool { return total(perShardRx(g)) == want })
		after := perShardRx(g)
		for i := range after {
			got := after[i] - before[i]
			if (i == k && got != 300) || (i != k && got != 0) {
				t.Fatalf("sender on CPU %d: shard %d (CPU %d) got %d datagrams; want all 300 on shard %d", cpu, i, cpus[i], got, k)
			}
		}
	}
}

// TestExclusiveStarvesALaterSocket: a socket of the same user joins the
// group after shardd; with a steering program it gets no traffic, without
// one the kernel's hash gives it a share.
func TestExclusiveStarvesALaterSocket(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		steer := SteerHash
		if exclusive {
			steer = SteerRandom // a program that only picks our sockets
		}
		g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, Exclusive: exclusive, Steer: steer, NewHandler: discardHandler})
		port := groupPort(g)
		fd := bindForeign(t, unix.SOCK_DGRAM, port)
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
		for f := 0; f < 64; f++ {
			sendFrom(t, to, 5, -1)
		}
		stolen := uint64(0)
		buf := make([]byte, 64)
		waitFor(t, "all 320 accounted for", func() bool {
			for {
				if _, _, err := unix.Recvfrom(fd, buf, 0); err != nil {
					break
				}
				stolen++
			}
			return stolen+total(perShardRx(g)) == 320
		})
		ours := total(perShardRx(g))
		if exclusive && (stolen != 0 || ours != 320) {
			t.Fatalf("exclusive: the later socket got %d datagrams, shardd %d of 320", stolen, ours)
		}
		if rx := perShardRx(g); exclusive && (rx[0] == 0 || rx[1] == 0) {
			t.Fatalf("exclusive: a shard got nothing: %v", rx)
		}
		if !exclusive && stolen == 0 {
			t.Fatalf("without a program the later socket should get a share of 64 flows, got none")
		}
	}
}

// TestSteeringCoversTCP: with a steering program a later TCP listener of the
// same user on the port gets no connections, where the kernel lets the
// program attach to TCP listeners at all.
func TestSteeringCoversTCP(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, TCP: true, Steer: SteerRandom, Exclusive: true})
	if err := g.Info().TCPSteerErr; err != nil {
		t.Skip("this kernel does not steer TCP listeners:", err)
	}
	port := groupPort(g)
	fd := bindForeign(t, unix.SOCK_STREAM, port)
	if err := unix.Listen(fd, 128); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		c := dialTCP(t, tcpAddr(g))
		c.Close()
	}
	// A connect returns before the listener side has the connection
	// (loopback may process the final ACK later): wait until all 50 are
	// accounted for, or an empty accept queue proves nothing.
	stolen := 0
	waitFor(t, "all 50 connections accounted for", func() bool {
		for {
			nfd, _, err := unix.Accept(fd)
			if err != nil {
				break
			}
			unix.Close(nfd)
			stolen++
		}
		var accepted uint64
		for _, s := range g.Stats(nil) {
			if s.Proto == "tcp" {
				accepted += s.Accepted
			}
		}
		return accepted+uint64(stolen) == 50
	})
	if stolen != 0 {
		t.Fatalf("the later TCP listener accepted %d of 50 connections", stolen)
	}
}

// TestSteeringSurvivesHandoff: an upgrade hands over the same sockets, so
// the group keeps its slots and its program: after the old group stops, one
// flow still spreads over the new group's shards (random steering), and a
// socket that joined later still gets nothing.
func TestSteeringSurvivesHandoff(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", Shards: 2, Steer: SteerRandom, Exclusive: true, NewHandler: discardHandler}
	old := startGroup(t, cfg)
	cfg = upgradeConfig(t, cfg, old)
	next := startGroup(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := old.Handoff(ctx); err != nil {
		t.Fatal(err)
	}
	late := joinPort(t, groupPort(next))
	sendFrom(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(next)), 2000, -1)
	waitFor(t, "2000 counted", func() bool { return total(perShardRx(next)) == 2000 })
	if rx := perShardRx(next); rx[0] < 700 || rx[1] < 700 {
		t.Fatalf("one flow after the hand-over: %v, want it spread by the program", rx)
	}
	if n, _, err := unix.Recvfrom(late, make([]byte, 16), unix.MSG_DONTWAIT); err == nil {
		t.Fatalf("the later socket got a datagram (%d bytes) after the hand-over", n)
	}
}

// TestSlotShiftOnClose shows the hazard and its fix: when one of shardd's
// sockets leaves the group, the kernel moves the group's last socket (a
// later joiner's) into the freed slot, and an index-based program then
// picks it. The stop therefore first points every choice at slot 0, which
// closes last.
func TestSlotShiftOnClose(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 2, Steer: SteerRandom, Exclusive: true, NewHandler: discardHandler})
		if err != nil {
			t.Fatal(err)
		}
		late := joinPort(t, groupPort(g))
		if pinned {
			if err := attachSteering(g.shards[0].rc, slotZeroProgram()); err != nil {
				t.Fatal(err)
			}
		}
		_ = g.shards[1].sock.Close() // slot 1 freed: the late socket moves in
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
		sendFrom(t, to, 200, -1)
		// Count where all 200 went (the group is not served: read shard
		// 0's socket here), so an empty late socket proves something:
		// loopback delivery may lag the send on a loaded machine.
		stolen, ours := 0, 0
		buf := make([]byte, 16)
		waitFor(t, "all 200 accounted for", func() bool {
			for {
				if _, _, err := unix.Recvfrom(late, buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
				stolen++
			}
			_ = g.shards[0].rc.Control(func(fd uintptr) {
				for {
					if _, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT); err != nil {
						return
					}
					ours++
				}
			})
			return stolen+ours == 200
		})
		_ = g.Close()
		if pinned && stolen != 0 {
			t.Fatalf("with slot 0 pinned the later socket got %d of 200", stolen)
		}
		if !pinned && stolen == 0 {
			t.Fatalf("without the pin the later socket should have inherited slot 1 and got some of 200 (the hazard this guards against)")
		}
	}
}
