// Command naiveudp is the baseline shardd is measured against: a UDP server
// written the way most Go programs write one, with one net.ListenUDP socket
// and one goroutine calling ReadFromUDP (and WriteToUDP to echo).
//
//	naiveudp [--handler echo|discard] [--rcvbuf BYTES] ADDR
//
// It prints "listening ADDR" (the real port when ADDR asks for port 0) once
// bound, and on SIGTERM or SIGINT prints "received N" and exits 0. Exit
// codes: 0 clean stop, 1 runtime failure, 2 usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("naiveudp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	handler := fs.String("handler", "echo", "echo (reply with the payload) or discard")
	rcvbuf := fs.Int("rcvbuf", 0, "receive buffer to ask with SetReadBuffer (capped by net.core.rmem_max); 0 keeps the kernel default")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: naiveudp [--handler echo|discard] [--rcvbuf BYTES] ADDR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || (*handler != "echo" && *handler != "discard") || *rcvbuf < 0 {
		fs.Usage()
		return 2
	}
	addr, err := net.ResolveUDPAddr("udp", fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "naiveudp: %v\n", err)
		return 2
	}
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "naiveudp: %v\n", err)
		return 1
	}
	if *rcvbuf > 0 {
		if err := c.SetReadBuffer(*rcvbuf); err != nil {
			fmt.Fprintf(stderr, "naiveudp: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "listening %s\n", c.LocalAddr())

	var received atomic.Uint64
	done := make(chan error, 1)
	go func() { done <- serve(c, *handler == "echo", &received) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		c.Close()
		<-done
		fmt.Fprintf(stdout, "received %d\n", received.Load())
		return 0
	case err := <-done:
		fmt.Fprintf(stderr, "naiveudp: %v\n", err)
		fmt.Fprintf(stdout, "received %d\n", received.Load())
		return 1
	}
}

// serve is the naive loop: one datagram per ReadFromUDP, one per WriteToUDP.
// It returns nil once c is closed.
func serve(c *net.UDPConn, echo bool, received *atomic.Uint64) error {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		received.Add(1)
		if echo {
			_, _ = c.WriteToUDP(buf[:n], from)
		}
	}
}
