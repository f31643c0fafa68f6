package shard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shardd/shardd/metrics"
	"github.com/shardd/shardd/packet"
)

// TestTCPManyConnectionsEcho opens hundreds of connections at once, each
// writing many chunks of random sizes, and reads back exactly what it wrote.
func testTCPManyConnectionsEcho(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 3, TCP: true, TCPShape: shapeOf(loop)})
	const conns, chunks = 300, 20
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", tcpAddr(g))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			var sent bytes.Buffer
			for j := 0; j < chunks; j++ {
				b := make([]byte, 1+r.IntN(3000))
				for k := range b {
					b[k] = byte(r.UintN(256))
				}
				sent.Write(b)
			}
			go func() { _, _ = c.Write(sent.Bytes()); _ = c.(*net.TCPConn).CloseWrite() }()
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, sent.Bytes()) {
				errs <- fmt.Errorf("conn %d: echoed %d of %d bytes, equal=%v, err %v", i, len(got), sent.Len(), bytes.Equal(got, sent.Bytes()), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "every connection closed", func() bool { total, _ := tcpStats(g); return total.Closed[metrics.CloseEOF] == conns })
	total, per := tcpStats(g)
	if total.Accepted != conns || total.RxBytes != total.TxBytes || total.Active() != 0 {
		t.Fatalf("accepted %d, rx %d bytes, tx %d bytes, active %d", total.Accepted, total.RxBytes, total.TxBytes, total.Active())
	}
	for _, s := range per {
		if s.Accepted == 0 {
			t.Errorf("shard %d accepted none of %d connections", s.Shard, conns)
		}
	}
}

// TestTCPHalfClose: the client shuts its sending side; every byte it sent is
// still answered before the server closes.
func testTCPHalfClose(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop)})
	c := dialTCP(t, tcpAddr(g))
	msg := bytes.Repeat([]byte("half-close "), 5000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after half-close: %d of %d bytes, %v", len(got), len(msg), err)
	}
}

// lengthEcho answers DNS-style length-prefixed messages.
type lengthEcho struct{ packet.LengthPrefixed }

func (lengthEcho) ServePacket(w *packet.ReplyWriter, p *packet.Packet) error {
	_, err := w.Write(p.Data)
	return err
}

func testTCPLengthPrefixedPipelined(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, TCP: true, TCPShape: shapeOf(loop), NewHandler: func(int) packet.Handler { return lengthEcho{} }})
	c := dialTCP(t, tcpAddr(g))
	var req bytes.Buffer
	for i := 0; i < 100; i++ {
		req.Write(packet.LengthPrefixed{}.AppendFrame(nil, []byte(fmt.Sprintf("query %d", i))))
	}
	// One write holding 100 pipelined frames, the last split across writes.
	b := req.Bytes()
	if _, err := c.Write(b[:len(b)-3]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Write(b[len(b)-3:]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i := 0; i < 100; i++ {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		m := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, m); err != nil || string(m) != fmt.Sprintf("query %d", i) {
			t.Fatalf("reply %d: %q %v", i, m, err)
		}
	}
}

func testTCPMaxFrame(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), MaxFrame: 100, NewHandler: func(int) packet.Handler { return lengthEcho{} }})
	c := dialTCP(t, tcpAddr(g))
	// A good frame, then one that announces 200 bytes: the first is still
	// answered before the connection closes.
	_, _ = c.Write(append(packet.LengthPrefixed{}.AppendFrame(nil, []byte("fine")), 0, 200))
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "\x00\x04fine" {
		t.Fatalf("got %q before the close; want the reply to the good frame and then EOF", got)
	}
	waitFor(t, "frame_too_large", func() bool { total, _ := tcpStats(g); return total.Closed[metrics.CloseFrameTooLarge] == 1 })
}

func testTCPMaxConns(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), MaxConns: 2})
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c := dialTCP(t, tcpAddr(g))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		open = append(open, c)
	}
	// Over the limit: accepted and reset at once, which the client sees as
	// a failed connect or a failed first read, never as a timeout.
	third, err := net.Dial("tcp", tcpAddr(g))
	if err == nil {
		defer third.Close()
		_ = third.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, err = third.Read(make([]byte, 1))
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the third connection over --max-conns 2 was not closed: %v", err)
	}
	waitFor(t, "limit counted", func() bool { total, _ := tcpStats(g); return total.Closed[metrics.CloseLimit] == 1 })
	// The first two still work.
	for _, c := range open {
		_, _ = c.Write([]byte("y"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTCPIdleAndSlowClients: a silent connection and one that trickles a
// frame byte by byte are both closed by the idle timeout.
func testTCPIdleAndSlowClients(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), IdleTimeout: 300 * time.Millisecond, NewHandler: func(int) packet.Handler { return lengthEcho{} }})
	dialTCP(t, tcpAddr(g)) // silent
	slow := dialTCP(t, tcpAddr(g))
	frame := packet.LengthPrefixed{}.AppendFrame(nil, bytes.Repeat([]byte("s"), 50))
	// The whole frame, a byte every 100 ms (over 5 s), unless the daemon
	// closes the connection first: if trickled bytes extended the idle
	// timeout, the frame would complete and be answered (rx 1).
	for _, b := range frame {
		if _, err := slow.Write([]byte{b}); err != nil {
			break // closed under us: what the test wants
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, "both closed as idle", func() bool { total, _ := tcpStats(g); return total.Closed[metrics.CloseIdle] == 2 })
	total, _ := tcpStats(g)
	if total.RxPackets != 0 || total.DiscardedBytes == 0 {
		t.Fatalf("rx %d messages, discarded %d bytes: the slow client's frame must not complete before its idle close, and the partial frame must be counted as discarded", total.RxPackets, total.DiscardedBytes)
	}
}

// TestTCPRestartUnderTimeWait: the server closes connections first (leaving
// TIME_WAIT on its side), stops, and a new group binds the port at once.
func testTCPRestartUnderTimeWait(t *testing.T, loop bool) {
	g, done := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, TCP: true, TCPShape: shapeOf(loop), IdleTimeout: 50 * time.Millisecond})
	addr := tcpAddr(g)
	for i := 0; i < 10; i++ {
		c := dialTCP(t, addr)
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, _ = c.Read(make([]byte, 1)) // the server closes it (idle): TIME_WAIT is ours
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	g2, err := Listen(Config{Addr: addr, Shards: 2, TCP: true, TCPShape: shapeOf(loop)})
	if err != nil {
		t.Fatalf("rebinding %s right after a stop with connections in TIME_WAIT: %v", addr, err)
	}
	_ = g2.Close()
}

// TestTCPShutdownAnswersWhatWasSent: requests written before the stop get
// their replies; the connection then closes with reason shutdown.
func testTCPShutdownAnswersWhatWasSent(t *testing.T, loop bool) {
	g, done := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), NewHandler: func(int) packet.Handler { return lengthEcho{} }})
	c := dialTCP(t, tcpAddr(g))
	_, _ = c.Write(packet.LengthPrefixed{}.AppendFrame(nil, []byte("warm")))
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	var req []byte
	for i := 0; i < 50; i++ {
		req = packet.LengthPrefixed{}.AppendFrame(req, []byte("late"))
	}
	req = append(req, 0, 9, 'p') // and a partial frame
	_, _ = c.Write(req)
	stopWhenDelivered(t, g, c, done)
	got, _ := io.ReadAll(c)
	if len(got) != 50*6 {
		t.Fatalf("got %d reply bytes after shutdown, want %d", len(got), 50*6)
	}
	total, _ := tcpStats(g)
	if total.Closed[metrics.CloseShutdown] != 1 || total.DiscardedBytes != 3 {
		t.Fatalf("closed %v, discarded %d bytes; want one shutdown close and the 3-byte partial frame counted", total.Closed, total.DiscardedBytes)
	}
}

// testTCPClientThatDoesNotRead: a client that sends and never reads its
// replies gets backpressure and then --write-timeout, not unbounded buffers.
func testTCPClientThatDoesNotRead(t *testing.T, loop bool) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), WriteTimeout: 300 * time.Millisecond})
	c := dialTCP(t, tcpAddr(g))
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := make([]byte, 64<<10)
		_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second)) // a hang guard: the daemon cuts it
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	// The daemon measures the timeout itself: the close's reason says
	// the write timeout cut it (the client's own deadline is a hang guard).
	waitFor(t, "write_timeout", func() bool { total, _ := tcpStats(g); return total.Closed[metrics.CloseWriteTimeout] == 1 })
	<-done
}

// testTCPShutdownAnswersABacklog: a raw stream whose client sent many
// reads' worth before the stop gets all of it echoed back.
func testTCPShutdownAnswersABacklog(t *testing.T, loop bool) {
	g, done := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), MaxFrame: 100})
	c := dialTCP(t, tcpAddr(g))
	msg := bytes.Repeat([]byte("0123456789"), 500) // 50 reads of at most 100 bytes
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	stopWhenDelivered(t, g, c, done)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d of %d bytes across the stop (%v)", len(got), len(msg), err)
	}
}

// testTCPShutdownRacesNewConnections stops while clients connect: every
// Shutdown must finish in time (a connection accepted during the stop must
// not wait for its idle timeout).
func testTCPShutdownRacesNewConnections(t *testing.T, loop bool) {
	for i := 0; i < 20; i++ {
		// An idle timeout far past the stop's deadline, and clients that
		// hold their connections until Shutdown has returned: a stop that
		// waited for an idle connection could only end at the deadline.
		g, done := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop), IdleTimeout: 10 * time.Minute})
		stopped := make(chan struct{})
		var wg sync.WaitGroup
		for d := 0; d < 4; d++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := net.Dial("tcp", tcpAddr(g)); err == nil {
					<-stopped
					c.Close()
				}
			}()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := g.Shutdown(ctx)
		cancel()
		close(stopped)
		<-done
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v", i, err)
		}
	}
}

// testTCPCloseAfterShutdown: a Close after Shutdown (a deferred Close) must
// not touch descriptors the loop already gave back.
func testTCPCloseAfterShutdown(t *testing.T, loop bool) {
	g, done := serveGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1, TCP: true, TCPShape: shapeOf(loop)})
	time.Sleep(10 * time.Millisecond)
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	// Take the freed descriptor numbers with files we can inspect.
	var files []*os.File
	for i := 0; i < 16; i++ {
		f, err := os.CreateTemp(t.TempDir(), "fd")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	_ = g.Close()
	for _, f := range files {
		st, _ := f.Stat()
		if st.Size() != 0 {
			t.Fatalf("Close after Shutdown wrote %d bytes into an unrelated file", st.Size())
		}
		f.Close()
	}
}

// TestTCP runs every TCP test against both connection shapes.
func TestTCP(t *testing.T) {
	for _, loop := range []bool{false, true} {
		shape := "goroutines"
		if loop {
			shape = "eventloop"
		}
		t.Run(shape, func(t *testing.T) {
			t.Run("ManyConnectionsEcho", func(t *testing.T) { testTCPManyConnectionsEcho(t, loop) })
			t.Run("HalfClose", func(t *testing.T) { testTCPHalfClose(t, loop) })
			t.Run("LengthPrefixedPipelined", func(t *testing.T) { testTCPLengthPrefixedPipelined(t, loop) })
			t.Run("MaxFrame", func(t *testing.T) { testTCPMaxFrame(t, loop) })
			t.Run("MaxConns", func(t *testing.T) { testTCPMaxConns(t, loop) })
			t.Run("IdleAndSlowClients", func(t *testing.T) { testTCPIdleAndSlowClients(t, loop) })
			t.Run("RestartUnderTimeWait", func(t *testing.T) { testTCPRestartUnderTimeWait(t, loop) })
			t.Run("ShutdownAnswersABacklog", func(t *testing.T) { testTCPShutdownAnswersABacklog(t, loop) })
			t.Run("ShutdownRacesNewConnections", func(t *testing.T) { testTCPShutdownRacesNewConnections(t, loop) })
			t.Run("CloseAfterShutdown", func(t *testing.T) { testTCPCloseAfterShutdown(t, loop) })
			t.Run("ClientThatDoesNotRead", func(t *testing.T) { testTCPClientThatDoesNotRead(t, loop) })
			t.Run("ShutdownAnswersWhatWasSent", func(t *testing.T) { testTCPShutdownAnswersWhatWasSent(t, loop) })
		})
	}
}
