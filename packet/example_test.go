package packet_test

import (
	"fmt"
	"net/netip"

	"github.com/shardd/shardd/packet"
)

// upper answers each datagram with its payload in upper case, built in
// place in the shard's reply slab.
type upper struct{}

func (upper) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	b := w.AvailableBuffer()
	for _, c := range p.Data {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	_, err := w.Write(b)
	return err
}

// A shard owns a ReplyQueue; each handler call gets only the writer for
// the packet being served, and the shard sends what was queued.
func ExampleReplyQueue() {
	q := packet.NewReplyQueue(64, 64*512, 512) // per shard, built once
	var h packet.Handler = upper{}
	send := func() { // the shard's batched send (sendmmsg)
		for _, r := range q.Replies() {
			fmt.Printf("%s -> %v\n", r.Data, r.Dst)
		}
		q.Reset()
	}
	for _, p := range []*packet.Packet{
		{Data: []byte("hello"), Src: netip.MustParseAddrPort("192.0.2.1:5000")},
		{Data: []byte("shard"), Src: netip.MustParseAddrPort("[2001:db8::7]:6000")},
	} {
		if !q.Room() {
			send()
		}
		if err := h.ServePacket(q.Begin(p), p); err != nil {
			fmt.Println("counted as a handler error:", err)
		}
	}
	send() // at the end of the batch
	// Output:
	// HELLO -> 192.0.2.1:5000
	// SHARD -> [2001:db8::7]:6000
}
