package testkit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Sender is a steady stream of datagrams: 16 sockets (16 source ports),
// each sending one datagram a millisecond, until Stop or the end of the
// test.
type Sender struct {
	sent     atomic.Uint64
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// StartSender starts sending payload to to.
func StartSender(t testing.TB, to netip.AddrPort, payload []byte) *Sender {
	s := &Sender{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(s.Stop)
	go func() {
		defer close(s.done)
		var conns []*net.UDPConn
		for i := 0; i < 16; i++ {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return
			}
			defer c.Close()
			conns = append(conns, c)
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			for _, c := range conns {
				if _, err := c.WriteToUDPAddrPort(payload, to); err == nil {
					s.sent.Add(1)
				}
			}
		}
	}()
	return s
}

// Sent is how many datagrams the kernel took so far.
func (s *Sender) Sent() uint64 { return s.sent.Load() }

// Stop ends the stream and waits until nothing more is sent.
func (s *Sender) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}
