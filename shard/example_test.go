package shard_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/shardd/shardd/packet"
	"github.com/shardd/shardd/shard"
)

// greet answers each datagram with "hello, " and its payload.
type greet struct{}

func (greet) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	b := w.AvailableBuffer()    // space in the shard's reply slab
	b = append(b, "hello, "...) // build the reply in place
	b = append(b, p.Data...)
	_, err := w.Write(b) // queued for the batch's sendmmsg, no copy
	return err
}

func ExampleListen() {
	g, err := shard.Listen(shard.Config{
		Addr:       "127.0.0.1:0",                               // port 0: one free port for every shard
		NewHandler: func(int) packet.Handler { return greet{} }, // one handler per shard
	})
	if err != nil {
		log.Fatal(err) // a *shard.ConfigError (bad Config) or a *shard.ListenError (bind)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(context.Background()) }() // one locked thread per shard

	// The sockets are bound since Listen: a datagram sent now waits in the
	// kernel until a shard reads it.
	c, err := net.Dial("udp", g.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Write([]byte("shard")); err != nil {
		log.Fatal(err)
	}
	reply := make([]byte, 512)
	n, err := c.Read(reply)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reply: %s\n", reply[:n])

	var received uint64
	for _, s := range g.Stats(nil) { // per-shard counters and kernel drops
		received += s.RxPackets
	}
	fmt.Println("datagrams received:", received)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil { // serve what is queued, send the replies, close
		log.Fatal(err)
	}
	fmt.Println("Serve returned:", <-served)
	// Output:
	// reply: hello, shard
	// datagrams received: 1
	// Serve returned: <nil>
}
