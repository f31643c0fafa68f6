package mmsg

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// groOOB is a UDP_GRO control message carrying segment size seg, as the
// kernel writes it (udp_cmsg_recv: an int).
func groOOB(seg int32) []byte {
	oob := make([]byte, GROSpace)
	d := putCmsgHdr(oob, unix.SOL_UDP, unix.UDP_GRO, 4)
	binary.NativeEndian.PutUint32(d, uint32(seg))
	return oob
}

func TestParseRecvControl(t *testing.T) {
	both := append(groOOB(1200), dualStackOOB()...) // the kernel puts UDP_GRO first
	if a, seg := ParseRecvControl(both); a != netip.MustParseAddr("127.0.0.1") || seg != 1200 {
		t.Fatalf("UDP_GRO + pktinfo: %v, %d; want 127.0.0.1, 1200", a, seg)
	}
	if a, seg := ParseRecvControl(groOOB(512)); a.IsValid() || seg != 512 {
		t.Fatalf("UDP_GRO alone: %v, %d", a, seg)
	}
	if a, seg := ParseRecvControl(dualStackOOB()); a != netip.MustParseAddr("127.0.0.1") || seg != 0 {
		t.Fatalf("pktinfo alone: %v, %d", a, seg)
	}
	oob := both
	if a := testing.AllocsPerRun(100, func() { ParseRecvControl(oob) }); a != 0 {
		t.Fatalf("ParseRecvControl: %v allocations", a)
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ n, seg, size, count int }{
		{737, 100, 100, 8}, {800, 100, 100, 8}, {801, 100, 100, 9},
		{100, 100, 100, 1}, {60, 100, 60, 1}, {0, 0, 0, 1}, {500, 0, 500, 1}, {500, -3, 500, 1},
	} {
		if size, count := Split(tc.n, tc.seg); size != tc.size || count != tc.count {
			t.Errorf("Split(%d, %d) = %d, %d; want %d, %d", tc.n, tc.seg, size, count, tc.size, tc.count)
		}
	}
}

// FuzzParseRecvControl feeds arbitrary control bytes and buffer lengths:
// no panic, no out-of-range read, and the split it implies covers the
// buffer exactly with datagrams of at most the segment size, at least one.
func FuzzParseRecvControl(f *testing.F) {
	f.Add(append(groOOB(1200), dualStackOOB()...), uint16(5000))
	f.Add(groOOB(-1), uint16(10))
	f.Add(groOOB(1<<30), uint16(65535))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, oob []byte, n uint16) {
		// Control buffers are 8-byte aligned in the shard; keep the fuzzer's too.
		buf := make([]uint64, (len(oob)+7)/8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)[:len(oob)]
		copy(b, oob)
		_, seg := ParseRecvControl(b)
		size, count := Split(int(n), seg)
		if count < 1 || size < 0 || size > int(n) {
			t.Fatalf("Split(%d, %d) = %d, %d", n, seg, size, count)
		}
		if count > 1 && ((count-1)*size >= int(n) || count*size < int(n)) {
			t.Fatalf("Split(%d, %d) = %d x %d does not cover the buffer with a non-empty last datagram", n, seg, count, size)
		}
	})
}
