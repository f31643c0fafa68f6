package packet

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestReplyWriterInPlaceAndCopy(t *testing.T) {
	q := NewReplyQueue(4, 64, 32)
	p := &Packet{Src: netip.MustParseAddrPort("192.0.2.1:53"), Dst: netip.MustParseAddr("198.51.100.1")}
	w := q.Begin(p)
	b := append(w.AvailableBuffer(), "in place"...)
	if n, err := w.Write(b); n != 8 || err != nil {
		t.Fatalf("Write in place: %d %v", n, err)
	}
	if &q.Replies()[0].Data[0] != &b[0] {
		t.Fatal("a reply built in AvailableBuffer was copied")
	}
	src := []byte("copied")
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	src[0] = 'X' // the writer must not keep the caller's slice
	if _, err := w.Write(nil); err != nil {
		t.Fatal("an empty reply is a valid datagram:", err)
	}
	got := q.Replies()
	if len(got) != 3 || string(got[0].Data) != "in place" || string(got[1].Data) != "copied" || len(got[2].Data) != 0 {
		t.Fatalf("replies %q", got)
	}
	for _, r := range got {
		if r.Dst != p.Src || r.Src != p.Dst {
			t.Fatalf("reply addressed %v from %v", r.Dst, r.Src)
		}
	}
	// Appending to one reply must never overwrite the next.
	if cap(got[0].Data) != len(got[0].Data) {
		t.Fatal("reply slices must be capped at their length")
	}
}

func TestReplyWriterLimits(t *testing.T) {
	q := NewReplyQueue(2, 40, 32)
	w := q.Begin(&Packet{})
	if _, err := w.Write(make([]byte, 33)); !errors.Is(err, ErrReplyTooLarge) {
		t.Fatalf("33 > MaxReply: %v", err)
	}
	if !q.Room() {
		t.Fatal("empty writer has no room")
	}
	if _, err := w.Write(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if q.Room() {
		t.Fatal("8 bytes left cannot hold a 32-byte reply")
	}
	if _, err := w.Write(make([]byte, 9)); !errors.Is(err, ErrReplyQueueFull) {
		t.Fatalf("slab overflow: %v", err)
	}
	if _, err := w.Write(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(nil); !errors.Is(err, ErrReplyQueueFull) {
		t.Fatalf("third reply of 2: %v", err)
	}
	if cap(w.AvailableBuffer()) != 0 {
		t.Fatal("a full slab offers no buffer")
	}
	q.Reset()
	if q.Len() != 0 || !q.Room() || cap(w.AvailableBuffer()) != 32 {
		t.Fatal("Reset did not free the writer")
	}
}

func TestBuiltinHandlers(t *testing.T) {
	q := NewReplyQueue(1, 100, 100)
	p := &Packet{Data: []byte("ping"), Src: netip.MustParseAddrPort("[2001:db8::1]:9")}
	w := q.Begin(p)
	if err := (Discard{}).ServePacket(w, p); err != nil || q.Len() != 0 {
		t.Fatalf("Discard: %v, %d replies", err, q.Len())
	}
	if err := (Echo{}).ServePacket(w, p); err != nil || q.Len() != 1 || !bytes.Equal(q.Replies()[0].Data, p.Data) {
		t.Fatalf("Echo: %v, %v", err, q.Replies())
	}
	if err := (Echo{}).ServePacket(w, p); !errors.Is(err, ErrReplyQueueFull) {
		t.Fatalf("Echo into a full writer: %v", err)
	}
}

func TestReplyWriterAllocatesNothing(t *testing.T) {
	q := NewReplyQueue(64, 64*512, 512)
	p := &Packet{Data: make([]byte, 100), Src: netip.MustParseAddrPort("127.0.0.1:1")}
	var h Handler = Echo{}
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < 64; i++ {
			_ = h.ServePacket(q.Begin(p), p)
		}
		q.Reset()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 64 echoes", allocs)
	}
}

func BenchmarkEcho(b *testing.B) {
	q := NewReplyQueue(64, 64*512, 512)
	p := &Packet{Data: make([]byte, 64), Src: netip.MustParseAddrPort("127.0.0.1:1")}
	var h Handler = Echo{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%64 == 0 {
			q.Reset()
		}
		_ = h.ServePacket(q.Begin(p), p)
	}
}

// FuzzReplyWriter writes arbitrary reply sizes, in place or copied, and
// checks that the writer never returns overlapping or corrupted replies.
func FuzzReplyWriter(f *testing.F) {
	f.Add([]byte{10, 200, 0, 33, 255}, uint8(4), uint16(300), uint16(64))
	f.Fuzz(func(t *testing.T, sizes []byte, maxReplies uint8, slab, maxReply uint16) {
		if maxReplies == 0 || slab == 0 || maxReply == 0 {
			return
		}
		q := NewReplyQueue(int(maxReplies), int(slab), int(maxReply))
		w := q.Begin(&Packet{})
		var want [][]byte
		for i, s := range sizes {
			b := bytes.Repeat([]byte{byte(i)}, int(s))
			if i%2 == 0 {
				b = append(w.AvailableBuffer(), b...)
			}
			_, err := w.Write(b)
			switch {
			case err == nil:
				want = append(want, bytes.Repeat([]byte{byte(i)}, int(s)))
			case errors.Is(err, ErrReplyTooLarge) && int(s) > w.MaxReply(),
				errors.Is(err, ErrReplyQueueFull):
			default:
				t.Fatalf("reply %d of %d bytes: %v", i, s, err)
			}
		}
		got := q.Replies()
		if len(got) != len(want) {
			t.Fatalf("%d replies, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Data, want[i]) {
				t.Fatalf("reply %d corrupted", i)
			}
		}
	})
}
