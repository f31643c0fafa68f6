package shard

import (
	"bytes"
	"testing"

	"github.com/shardd/shardd/packet"
)

// FuzzGROSplit serves one received buffer of arbitrary bytes, segment size
// (as a UDP_GRO message could carry, hostile values included), MaxPacket and
// slot through the shard's split and checks it against a plain reference:
// datagram k is data[k*seg:min((k+1)*seg, n)], handled in order, in place,
// unless longer than MaxPacket or cut by the slot (truncated); the counters
// add up to the buffer.
func FuzzGROSplit(f *testing.F) {
	f.Add([]byte("aaaabbbbcc"), int32(4), uint16(100), uint16(0))
	f.Add(bytes.Repeat([]byte("x"), 620), int32(150), uint16(100), uint16(0))
	f.Add([]byte{}, int32(0), uint16(1), uint16(0))
	f.Add([]byte("abcdef"), int32(-7), uint16(3), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, seg int32, maxPacket, cut uint16) {
		if maxPacket == 0 {
			maxPacket = 1
		}
		var handled [][]byte
		h := packet.HandlerFunc(func(_ *packet.ReplyWriter, p *packet.Packet) error {
			if cap(p.Data) != len(p.Data) {
				t.Fatalf("a datagram of %d bytes shows %d of capacity: the next one is the handler's", len(p.Data), cap(p.Data))
			}
			handled = append(handled, p.Data)
			return nil
		})
		s := &shard{handler: h, maxPacket: int(maxPacket), msgs: make([]rxMsg, 1), replies: packet.NewReplyQueue(1, 1, 1)}
		m := &s.msgs[0]
		slot := len(data) - min(int(cut), len(data)) // a slot shorter than what came: the tail is cut
		m.buf = data[:slot:slot]
		m.set(len(data), int(seg))
		s.serveBatch(1)

		size, count := len(data), 1
		if seg > 0 && int(seg) < len(data) {
			size, count = int(seg), (len(data)+int(seg)-1)/int(seg)
		}
		var want [][]byte
		for k := range count {
			d := data[k*size : min((k+1)*size, len(data))]
			if len(d) <= int(maxPacket) && (k*size+len(d)) <= slot {
				want = append(want, d)
			}
		}
		c := s.counts
		if c.RxPackets != uint64(count) || c.RxBytes != uint64(len(data)) || c.Truncated != uint64(count-len(want)) {
			t.Fatalf("counted %d datagrams (%d bytes, %d truncated), want %d (%d, %d)", c.RxPackets, c.RxBytes, c.Truncated, count, len(data), count-len(want))
		}
		if len(handled) != len(want) {
			t.Fatalf("handled %d datagrams, want %d", len(handled), len(want))
		}
		for k := range want {
			if len(want[k]) > 0 && &handled[k][0] != &want[k][0] || !bytes.Equal(handled[k], want[k]) {
				t.Fatalf("datagram %d: %q, want %q in place", k, handled[k], want[k])
			}
		}
	})
}
