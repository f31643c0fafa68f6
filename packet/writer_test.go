package packet

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// TestReplyWriterIsTheHandlersView pins what a handler can do with the
// writer it is given: build and queue replies to its own packet, and read
// the size limit. The queue's methods (Begin, Reset, Replies, ...) belong
// to the shard: a handler that could call them could drop or redirect other
// packets' replies.
func TestReplyWriterIsTheHandlersView(t *testing.T) {
	var got []string
	wt := reflect.TypeFor[*ReplyWriter]()
	for i := range wt.NumMethod() {
		got = append(got, wt.Method(i).Name)
	}
	if want := []string{"AvailableBuffer", "MaxReply", "Write"}; !slices.Equal(got, want) {
		t.Fatalf("*ReplyWriter has methods %v, want only %v", got, want)
	}
	if reflect.TypeFor[ReplyWriter]().NumField() != 1 || reflect.TypeFor[ReplyWriter]().Field(0).IsExported() {
		t.Fatal("ReplyWriter must hide its queue")
	}
}

// TestReplyQueueBeginAddressesEachPacket: each packet's writer queues its
// replies to that packet's sender, from the address it arrived on, and a
// later Begin does not readdress what was queued before.
func TestReplyQueueBeginAddressesEachPacket(t *testing.T) {
	q := NewReplyQueue(4, 256, 64)
	p1 := &Packet{Src: netip.MustParseAddrPort("192.0.2.1:1000"), Dst: netip.MustParseAddr("198.51.100.1")}
	p2 := &Packet{Src: netip.MustParseAddrPort("[2001:db8::2]:2000")}
	if _, err := q.Begin(p1).Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Begin(p2).Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	r := q.Replies()
	if len(r) != 2 || r[0].Dst != p1.Src || r[0].Src != p1.Dst || r[1].Dst != p2.Src || r[1].Src.IsValid() {
		t.Fatalf("replies %+v", r)
	}
	if q.Len() != 2 || q.Bytes() != 6 {
		t.Fatalf("Len %d Bytes %d", q.Len(), q.Bytes())
	}
}
