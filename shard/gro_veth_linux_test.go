package shard

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/shard/mmsg"
	"github.com/shardd/shardd/shard/netnstest"
)

// Legacy ethtool commands (linux/ethtool.h): get and set one feature.
const (
	ethtoolGTSO, ethtoolSTSO = 0x1e, 0x1f
	ethtoolGGRO, ethtoolSGRO = 0x2b, 0x2c
)

// ethtool sets one feature of device dev with the ethtool ioctl (what
// `ethtool -K dev gro on` or `tso off` does; ethtool itself may be
// missing), from within dev's namespace, and returns its state read back
// with get.
func ethtool(dev string, set, get uint32, on bool) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	call := func(cmd, data uint32) (uint32, error) {
		ev := struct{ cmd, data uint32 }{cmd, data} // struct ethtool_value
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = uintptr(unsafe.Pointer(&ev))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&ev)
		if errno != 0 {
			return 0, errno
		}
		return ev.data, nil
	}
	v := uint32(0)
	if on {
		v = 1
	}
	if _, err := call(set, v); err != nil {
		return false, fmt.Errorf("ethtool command %#x on %s: %w", set, dev, err)
	}
	got, err := call(get, 0)
	return got != 0, err
}

// TestGROVethPlainSender: shardd (GRO on) in namespace B behind a veth
// device with GRO asked for (NAPI GRO, as a real NIC does it), and a plain
// sender (no GSO) in namespace A sending bursts of 63 datagrams of 200
// bytes and one of 50, one flow, each burst echoed before the next (at most
// 64 in flight: the veth ring holds 256). Every datagram comes back byte
// for byte and the counters are exact. Whether the kernel coalesced the
// plain sender's datagrams on the way in is logged from the GRO histogram,
// not asserted: that is the kernel's choice. veth takes a datagram through
// NAPI (and GRO) only when the sending device has no TSO or the receiving
// one forwards UDP GRO (veth_skb_is_eligible_for_gro), so the test runs
// with TSO on the sending side as veth comes (default) and off (tso-off),
// each also with the receiving NAPI poll in a kernel thread (threaded-napi).
func TestGROVethPlainSender(t *testing.T) {
	for _, tc := range []struct {
		name             string
		tsoOff, threaded bool
	}{{"default", false, false}, {"tso-off", true, false}, {"threaded-napi", false, true}, {"tso-off-threaded-napi", true, true}} {
		t.Run(tc.name, func(t *testing.T) { vethEcho(t, tc.tsoOff, tc.threaded) })
	}
}

// vethEcho runs shardd in B of a netnstest.Pair (A sends from 198.18.0.1
// to B's 198.18.0.2, over the veth pair: nothing leaves the two namespaces).
func vethEcho(t *testing.T, tsoOff, threaded bool) {
	p := netnstest.NewPair(t, 0)
	var devGRO, devTSO bool
	var devErr, tsoErr error
	var g *Group
	p.B.Run(t, func() {
		devGRO, devErr = ethtool(p.DevB, ethtoolSGRO, ethtoolGGRO, true)
		if threaded && devErr == nil {
			devErr = threadedNAPI(p)
		}
		g = startGroup(t, Config{Addr: p.B4.String() + ":5399", Shards: 1, GRO: OffloadOn})
	})
	var c *net.UDPConn
	p.A.Run(t, func() {
		devTSO, tsoErr = ethtool(p.DevA, ethtoolSTSO, ethtoolGTSO, !tsoOff)
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.A4, 0)))
		c = closedAtEnd(t, c, err)
	})
	to := netip.AddrPortFrom(p.B4, 5399)
	const bursts, per = 30, 64
	for r := range bursts {
		var sent []string
		for k := range per {
			d := bytes.Repeat([]byte{byte('a' + k%26)}, 200)
			if k == per-1 {
				d = d[:50]
			}
			d[0], d[1] = byte(r), byte(k)
			sent = append(sent, string(d))
		}
		sendBurst(t, c, to, sent)
		sort.Strings(sent)
		got, from := readEchoes(t, c, per)
		if fmt.Sprint(got) != fmt.Sprint(sent) || from[to] != per {
			t.Fatalf("burst %d: echoes differ from what was sent, or came from elsewhere (%v)", r, from)
		}
	}
	want := uint64(bursts * per)
	waitFor(t, "the counters", func() bool { return shard0(g).TxPackets == want })
	s := shard0(g)
	if s.RxPackets != want || s.RxBytes != bursts*(63*200+50) || s.Truncated != 0 || s.HandlerErrors != 0 {
		t.Fatalf("counters %+v, want %d datagrams", s.Counts, want)
	}
	var buffers uint64
	for _, n := range s.GROSegments {
		buffers += n
	}
	t.Logf("veth: receiving device GRO %v, threaded NAPI %v (%v), sending device TSO %v (%v); %d datagrams of a plain sender arrived in %d buffers; buffers by datagrams held (le=1,2,4,...): %v",
		devGRO, threaded, devErr, devTSO, tsoErr, want, buffers, s.GROSegments)
}

// threadedNAPI moves the receiving device's NAPI poll to a kernel thread
// (/sys/class/net/DEV/threaded, written within namespace B, whose sysfs `ip
// netns exec` mounts): the sender's softirq then no longer polls after each
// datagram, so datagrams can wait together for one poll, as on a NIC.
func threadedNAPI(p *netnstest.Pair) error {
	out, err := p.B.Command("sh", "-c", "echo 1 > /sys/class/net/"+p.DevB+"/threaded").CombinedOutput()
	if err != nil {
		return fmt.Errorf("threaded NAPI: %v: %s", err, out)
	}
	return nil
}

// sendBurst sends datagrams to `to` from c with sendmmsg (a plain sender:
// no GSO), so that a burst reaches the device back to back.
func sendBurst(t *testing.T, c *net.UDPConn, to netip.AddrPort, datagrams []string) {
	t.Helper()
	b := mmsg.NewBatch(len(datagrams), mmsg.Options{Addrs: true})
	for i, d := range datagrams {
		b.SetBuf(i, []byte(d))
		b.SetAddr(i, unix.AF_INET, to)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for from := 0; from < len(datagrams); {
		var n int
		var errno unix.Errno
		if err := rc.Write(func(fd uintptr) bool {
			n, errno = b.Send(fd, from, len(datagrams), unix.MSG_DONTWAIT)
			return errno != unix.EAGAIN
		}); err != nil || errno != 0 {
			t.Fatalf("sendmmsg: %v %v", err, errno)
		}
		from += n
	}
}
