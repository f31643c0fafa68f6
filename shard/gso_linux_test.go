package shard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard/mmsg"
)

// gsoPayloads are n datagrams of the given sizes (cycled), each stamped
// with its index so that a reply out of place shows.
func gsoPayloads(n int, sizes ...int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := make([]byte, sizes[i%len(sizes)])
		for j := range p {
			p[j] = byte(i*7 + j)
		}
		if len(p) >= 4 {
			binary.BigEndian.PutUint32(p, uint32(i))
		}
		out[i] = p
	}
	return out
}

// queuedEcho queues every payload at a fresh one-shard echo group before it
// serves (so its batches are full and the replies can be grouped), sends
// them with client (to[i] for payload i), reads every reply back and returns
// them in arrival order with their sources, and the group's counters once
// they count every reply.
func queuedEcho(t *testing.T, cfg Config, client *net.UDPConn, to []netip.AddrPort, payloads [][]byte, send func(), settled func(metrics.Counts) bool) (replies [][]byte, from []netip.AddrPort, c metrics.Counts) {
	t.Helper()
	cfg.Shards = 1
	// Every reply waits in the client's queue until it reads: room for them all.
	if err := client.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	g, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	port := groupPort(g)
	for i := range to {
		to[i] = netip.AddrPortFrom(to[i].Addr(), port)
	}
	send()
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = g.Shutdown(ctx)
		<-served
	}()
	buf := make([]byte, 70000)
	_ = client.SetReadDeadline(time.Now().Add(waitTimeout))
	for range payloads {
		n, src, err := client.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(replies), err)
		}
		replies = append(replies, bytes.Clone(buf[:n]))
		from = append(from, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	}
	waitFor(t, "tx counters", func() bool { return g.Stats(nil)[0].TxPackets >= uint64(len(payloads)) })
	if settled != nil {
		// What else the counters must show once every reply is counted.
		waitFor(t, "GSO counters", func() bool { return settled(g.Stats(nil)[0].Counts) })
	}
	return replies, from, g.Stats(nil)[0].Counts
}

// gsoSends is the GSO sends a shard's counters show.
func gsoSends(c metrics.Counts) (sends uint64) {
	for _, n := range c.TxGSOSends {
		sends += n
	}
	return sends
}

func TestGSOEchoOfAGSOStream(t *testing.T) {
	for _, tc := range []struct {
		network, listen string
		dst             netip.Addr
	}{
		{"udp4", "127.0.0.1:0", netip.MustParseAddr("127.0.0.1")},
		{"udp6", "[::1]:0", netip.IPv6Loopback()},
	} {
		for _, mode := range []Offload{OffloadOn, OffloadOff} {
			t.Run(tc.network+"/gso-"+mode.String(), func(t *testing.T) {
				const n, size = 200, 300
				payloads := gsoPayloads(n, size)
				client, err := net.ListenUDP(tc.network, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				to := []netip.AddrPort{netip.AddrPortFrom(tc.dst, 0)}
				// GRO off: the expectation counts receive batches of
				// datagrams (with GRO one coalesced buffer fills the reply
				// queue several times per batch; TestGROEchoExact covers
				// GRO with GSO replies).
				replies, _, c := queuedEcho(t, Config{Addr: tc.listen, GSO: mode, GRO: OffloadOff, Batch: 64}, client, to, payloads, func() {
					sendGSO(t, client, to[0], payloads, size)
				}, func(c metrics.Counts) bool {
					// Every batch of two or more (all to one client, of one
					// size, at most 64) leaves in one GSO send; a batch of
					// one alone.
					return mode == OffloadOff || c.TxGSODatagrams == n-c.BatchSizes[0]
				})
				for i, r := range replies {
					if !bytes.Equal(r, payloads[i]) {
						t.Fatalf("reply %d is %d bytes %x..., want payload %d", i, len(r), r[:min(8, len(r))], i)
					}
				}
				if c.RxPackets != n || c.TxPackets != n || c.TxBytes != n*size || c.SendErrors != 0 {
					t.Fatalf("counters rx %d tx %d (%d bytes) errors %d, want %d datagrams of %d bytes each way", c.RxPackets, c.TxPackets, c.TxBytes, c.SendErrors, n, size)
				}
				sends := gsoSends(c)
				if mode == OffloadOff && (sends != 0 || c.TxGSODatagrams != 0) {
					t.Fatalf("GSO off, yet %d GSO sends of %d replies", sends, c.TxGSODatagrams)
				}
				// Queued before serving, most batches are full.
				single := c.BatchSizes[0]
				if mode == OffloadOn && (sends == 0 || sends != c.Batches-single || c.TxGSODatagrams != n-single) {
					t.Fatalf("GSO on: %d GSO sends of %d replies, want one per batch of 2 or more: %d batches, %d of one", sends, c.TxGSODatagrams, c.Batches, single)
				}
				t.Logf("%d replies byte-exact and in order; %d GSO sends carried %d", n, sends, c.TxGSODatagrams)
			})
		}
	}
}

// sendGSO sends payloads (each size bytes) to to in GSO sends of up to 64.
func sendGSO(t *testing.T, c *net.UDPConn, to netip.AddrPort, payloads [][]byte, size int) {
	t.Helper()
	oob := make([]byte, mmsg.SegmentSpace)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	for i := 0; i < len(payloads); i += 64 {
		var buf []byte
		for _, p := range payloads[i:min(i+64, len(payloads))] {
			buf = append(buf, p...)
		}
		if _, _, err := c.WriteMsgUDPAddrPort(buf, oob, to); err != nil {
			t.Fatalf("GSO send: %v", err)
		}
	}
}

func TestGSOMixedSizesAndDestinations(t *testing.T) {
	// Sizes in one flow: equal runs group, a shorter one ends its group,
	// a longer one starts a new one.
	payloads := gsoPayloads(120, 500, 500, 500, 200, 500, 900, 900, 30, 1, 700)
	client, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	replies, _, c := queuedEcho(t, Config{Addr: "127.0.0.1:0"}, client, to, payloads, func() {
		for _, p := range payloads {
			if _, err := client.WriteToUDPAddrPort(p, to[0]); err != nil {
				t.Fatal(err)
			}
		}
	}, func(c metrics.Counts) bool { return c.TxGSODatagrams > 0 })
	for i, r := range replies {
		if !bytes.Equal(r, payloads[i]) {
			t.Fatalf("reply %d is %d bytes, want payload %d (%d bytes)", i, len(r), i, len(payloads[i]))
		}
	}
	if c.TxPackets != 120 || c.TxGSODatagrams == 0 || c.TxGSODatagrams >= 120 {
		t.Fatalf("tx %d, %d by GSO: want all 120, some by GSO and not all", c.TxPackets, c.TxGSODatagrams)
	}
}

// gsoConn is an mmsgConn on a fresh socket with GSO set up, for the
// grouping tests, which look at the headers fill builds without sending.
func gsoConn(t *testing.T, network string, pktinfo bool) (*mmsgConn, *metrics.Counts) {
	t.Helper()
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, _ := c.SyscallConn()
	msgs := make([]rxMsg, 64)
	for i := range msgs {
		msgs[i].buf = make([]byte, 1)
	}
	m, err := newMmsgConn(rc, c.LocalAddr(), msgs, pktinfo)
	if err != nil {
		t.Fatal(err)
	}
	counts := &metrics.Counts{}
	if err := setupGSO(m, OffloadOn, counts); err != nil {
		t.Fatal(err)
	}
	return m, counts
}

// groups is fill's grouping of replies as "segments x size" per header.
func groups(m *mmsgConn, replies []packet.Reply) []string {
	var out []string
	for next := 0; next < len(replies); {
		k, end, _ := m.fill(replies, next)
		for _, g := range m.txGroups[:k] {
			out = append(out, fmt.Sprintf("%dx%d", g.segs, g.size))
		}
		next = end
	}
	return out
}

func TestGSOGrouping(t *testing.T) {
	a, b := netip.MustParseAddrPort("127.0.0.1:1000"), netip.MustParseAddrPort("127.0.0.1:1001")
	src1, src2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	slab := make([]byte, 1<<20)
	// replies lays sizes out one after the other in slab, as ReplyQueue does.
	replies := func(dst []netip.AddrPort, src []netip.Addr, sizes ...int) []packet.Reply {
		var out []packet.Reply
		off := 0
		for i, n := range sizes {
			out = append(out, packet.Reply{Data: slab[off : off+n : off+n], Dst: dst[i%len(dst)], Src: src[i%len(src)]})
			off += n
		}
		return out
	}
	one := []netip.AddrPort{a}
	for _, tc := range []struct {
		name    string
		pktinfo bool
		replies []packet.Reply
		want    string
	}{
		{"equal sizes", false, replies(one, []netip.Addr{src1}, 100, 100, 100), "[3x100]"},
		{"shorter last", false, replies(one, []netip.Addr{src1}, 100, 100, 40, 100), "[3x100 1x100]"},
		{"longer starts anew", false, replies(one, []netip.Addr{src1}, 100, 200, 200, 100), "[1x100 3x200]"},
		{"equal after shorter", false, replies(one, []netip.Addr{src1}, 200, 100, 100), "[2x200 1x100]"},
		{"empty never grouped", false, replies(one, []netip.Addr{src1}, 0, 0, 10, 0), "[1x0 1x0 1x10 1x0]"},
		{"other destinations never", false, replies([]netip.AddrPort{a, b}, []netip.Addr{src1}, 100, 100, 100, 100), "[1x100 1x100 1x100 1x100]"},
		{"pktinfo: other sources never", true, replies(one, []netip.Addr{src1, src2}, 100, 100, 100), "[1x100 1x100 1x100]"},
		{"pktinfo: same source", true, replies(one, []netip.Addr{src2}, 100, 100, 100), "[3x100]"},
		{"64 at most", false, replies(one, []netip.Addr{src1}, repeat(10, 130)...), "[64x10 64x10 2x10]"},
		{"64 KiB at most", false, replies(one, []netip.Addr{src1}, repeat(30000, 3)...), "[2x30000 1x30000]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := gsoConn(t, "udp4", tc.pktinfo)
			if got := fmt.Sprint(groups(m, tc.replies)); got != tc.want {
				t.Fatalf("groups %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("not contiguous: gathered", func(t *testing.T) {
		m, _ := gsoConn(t, "udp4", false)
		p := make([]byte, 50)
		rs := []packet.Reply{{Data: p, Dst: a}, {Data: p, Dst: a}, {Data: p, Dst: a}}
		if got := fmt.Sprint(groups(m, rs)); got != "[3x50]" || m.tx.MsgLen(0) != 0 || m.txIovs != 3 {
			t.Fatalf("groups %s over %d iovecs, want [3x50] over 3", got, m.txIovs)
		}
	})
}

func repeat(size, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size
	}
	return out
}

// TestGSOFallback makes the kernel's refusals happen (the send call is
// wrapped: loopback accepts every GSO send) and checks every reply still
// leaves, once, in order, and what is remembered: EIO stops GSO on the
// socket, EINVAL and EMSGSIZE stop grouping that size and larger.
func TestGSOFallback(t *testing.T) {
	for _, tc := range []struct {
		errno    unix.Errno
		gsoAfter bool // a later batch of smaller replies is still grouped
	}{{unix.EIO, false}, {unix.EINVAL, true}, {unix.EMSGSIZE, true}} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			m, counts := gsoConn(t, "udp4", false)
			refused := 0
			m.sendCall = func(fd uintptr) {
				if g := m.txGroups[m.txFrom]; g.segs > 1 && refused == 0 {
					refused++
					m.txN, m.txErrno = 0, tc.errno
					return
				}
				m.send(fd)
			}
			dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
			payloads := gsoPayloads(10, 100)
			var rs []packet.Reply
			for _, p := range payloads {
				rs = append(rs, packet.Reply{Data: p, Dst: dst})
			}
			failed, err := m.writeBatch(rs, nil)
			if failed != 0 || err != nil || refused != 1 || m.gsoRefusals != 1 {
				t.Fatalf("failed %d err %v, refusals %d/%d; want all 10 sent after 1 refusal", failed, err, refused, m.gsoRefusals)
			}
			buf := make([]byte, 2000)
			_ = srv.SetReadDeadline(time.Now().Add(waitTimeout))
			for i := range payloads {
				n, _, err := srv.ReadFromUDPAddrPort(buf)
				if err != nil || !bytes.Equal(buf[:n], payloads[i]) {
					t.Fatalf("datagram %d: %q, %v", i, buf[:n], err)
				}
			}
			// A GSO send is counted as it is formed, before it is handed
			// to the kernel: the refused one too (its replies then went
			// one by one, read above).
			if counts.TxGSODatagrams != 10 || gsoSends(*counts) != 1 {
				t.Fatalf("%d GSO sends of %d replies counted, want the 1 of 10 handed to the kernel", gsoSends(*counts), counts.TxGSODatagrams)
			}
			// A later batch of smaller replies.
			small := gsoPayloads(4, 50)
			rs = rs[:0]
			for _, p := range small {
				rs = append(rs, packet.Reply{Data: p, Dst: dst})
			}
			if failed, err := m.writeBatch(rs, nil); failed != 0 || err != nil {
				t.Fatalf("second batch: %d failed, %v", failed, err)
			}
			for i := range small {
				n, _, err := srv.ReadFromUDPAddrPort(buf)
				if err != nil || !bytes.Equal(buf[:n], small[i]) {
					t.Fatalf("second batch, datagram %d: %q, %v", i, buf[:n], err)
				}
			}
			if got := counts.TxGSODatagrams == 14; got != tc.gsoAfter || m.gso != (tc.errno != unix.EIO) {
				t.Fatalf("after %v: GSO on the socket %v, the smaller batch grouped %v; want grouped %v", tc.errno, m.gso, got, tc.gsoAfter)
			}
			if tc.errno != unix.EIO && m.gsoMax != 100 {
				t.Fatalf("after %v at 100-byte segments, gsoMax %d, want 100", tc.errno, m.gsoMax)
			}
		})
	}
}

func TestGSOSetting(t *testing.T) {
	_, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1, GSO: OffloadOn, noBatchIO: true})
	if g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1}); err != nil || !g.Info().GSO {
		t.Fatalf("GSO auto on a kernel with UDP_SEGMENT: Info.GSO false (%v)", err)
	} else {
		_ = g.Close()
	}
	if g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1, GSO: OffloadOff}); err != nil || g.Info().GSO {
		t.Fatalf("GSO off: Info.GSO true (%v)", err)
	} else {
		_ = g.Close()
	}
	if !errors.Is(err, errGSOUnsupported) {
		t.Fatalf("GSO on over the portable path: %v, want %v", err, errGSOUnsupported)
	}
	var o Offload
	if err := o.UnmarshalText([]byte("sometimes")); err == nil {
		t.Fatal("Offload accepted \"sometimes\"")
	}
}

func TestGSOPktinfoRepliesFromTheirDestination(t *testing.T) {
	for _, tc := range []struct {
		network string
		dsts    []netip.Addr
	}{
		{"udp4", []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}},
		{"udp6", []netip.Addr{netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.3")}},
	} {
		t.Run(tc.network, func(t *testing.T) {
			client, err := net.ListenUDP(tc.network, nil)
			if tc.network == "udp6" {
				client, err = net.ListenUDP("udp", nil) // dual-stack: ::1 and 127.0.0.3
			}
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			// Blocks of 8 to each address in turn: grouped within a block,
			// never across (another source).
			payloads := gsoPayloads(96, 200)
			to := make([]netip.AddrPort, len(payloads))
			for i := range to {
				to[i] = netip.AddrPortFrom(tc.dsts[i/8%2], 0)
			}
			replies, from, c := queuedEcho(t, Config{Addr: ":0"}, client, to, payloads, func() {
				for i, p := range payloads {
					if _, err := client.WriteToUDPAddrPort(p, to[i]); err != nil {
						t.Fatal(err)
					}
				}
			}, func(c metrics.Counts) bool { return c.TxGSODatagrams > 0 })
			for i, r := range replies {
				if !bytes.Equal(r, payloads[i]) || from[i] != to[i] {
					t.Fatalf("reply %d from %v (%d bytes), want payload %d from %v", i, from[i], len(r), i, to[i])
				}
			}
			if c.TxPackets != 96 || c.TxGSODatagrams == 0 {
				t.Fatalf("tx %d, %d by GSO: want 96, some by GSO", c.TxPackets, c.TxGSODatagrams)
			}
		})
	}
}

// TestGSORefusedByTheKernel runs itself in a network namespace of its own
// whose loopback has a 1500-byte MTU: a GSO send of 2000-byte segments is
// then refused by the kernel itself (a segment over the path MTU: EMSGSIZE
// on Linux 6.x, EINVAL before).
// Every reply must still arrive, byte-exact, sent one by one; the size is
// remembered (no second refusal) and smaller replies are grouped again.
func TestGSORefusedByTheKernel(t *testing.T) {
	if os.Getenv("SHARDD_GSOMTU_CHILD") == "1" {
		gsoMTUChild(t)
		return
	}
	unshare, err := exec.LookPath("unshare")
	ip, err2 := exec.LookPath("ip")
	if os.Geteuid() != 0 || err != nil || err2 != nil {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("needs root, unshare and ip, and SHARDD_REQUIRE_TOOLS=1: euid %d, %v, %v", os.Geteuid(), err, err2)
		}
		t.Skipf("a network namespace of its own needs root, unshare and ip: euid %d, %v, %v", os.Geteuid(), err, err2)
	}
	cmd := exec.Command(unshare, "--net", "sh", "-c", ip+" link set lo mtu 1500 up && exec \"$0\" -test.run '^TestGSORefusedByTheKernel$' -test.v -test.count 1", os.Args[0])
	cmd.Env = append(os.Environ(), "SHARDD_GSOMTU_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "gsomtu: ") {
		t.Fatalf("the child in its own namespace did not report:\n%s", out)
	}
	t.Logf("%s", strings.TrimSpace(lastLine(string(out), "gsomtu:")))
}

func gsoMTUChild(t *testing.T) {
	client, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	g, err := Listen(Config{Addr: "127.0.0.1:0", Shards: 1, GSO: OffloadOn})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), groupPort(g))
	echo := func(payloads [][]byte) {
		t.Helper()
		for _, p := range payloads {
			if _, err := client.WriteToUDPAddrPort(p, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	big := gsoPayloads(10, 2000)
	echo(big) // queued before serving: one batch, one group of 10
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }()
	defer func() { _ = g.Close(); <-served }()
	readBack(t, client, big)
	m := g.shards[0].bc.(*mmsgConn)
	waitFor(t, "the replies counted", func() bool { return g.Stats(nil)[0].TxPackets == 10 })
	c := g.Stats(nil)[0].Counts
	// The refused GSO send is counted (as it was formed, before it was
	// handed to the kernel); its replies went one by one.
	attempted := c.TxGSODatagrams
	if m.gsoRefusals != 1 || m.gsoMax != 2000 || gsoSends(c) != 1 || attempted < 2 || c.SendErrors != 0 {
		t.Fatalf("refusals %d, gsoMax %d, %d GSO sends of %d, %d send errors: want the kernel's refusal of one, remembered, and every reply sent alone", m.gsoRefusals, m.gsoMax, gsoSends(c), attempted, c.SendErrors)
	}
	refusals := m.gsoRefusals
	// Smaller replies group again (once a train lands in one batch).
	small := gsoPayloads(10, 500)
	deadline := time.Now().Add(waitTimeout)
	for g.Stats(nil)[0].TxGSODatagrams == attempted {
		if time.Now().After(deadline) {
			t.Fatal("500-byte replies never grouped after the 2000-byte refusal")
		}
		sendGSO(t, client, to, small, 500)
		readBack(t, client, small)
		echo(big[:2])
		readBack(t, client, big[:2])
	}
	if m.gsoRefusals != refusals {
		t.Fatalf("%d more refusals: the refused size was tried again", m.gsoRefusals-refusals)
	}
	t.Logf("gsomtu: lo MTU 1500: the kernel refused 2000-byte segments %d time(s) (%v), every reply went alone; 500-byte replies grouped after", refusals, m.gsoRefusal)
}

// readBack reads len(want) datagrams on c and checks each in order.
func readBack(t *testing.T, c *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 70000)
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	for i := range want {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || !bytes.Equal(buf[:n], want[i]) {
			t.Fatalf("reply %d: %d bytes, %v; want %d bytes", i, n, err, len(want[i]))
		}
	}
}
