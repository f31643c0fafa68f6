// Command naive is the baseline shardd is measured against: servers written
// the way most Go programs write them. UDP: one net.ListenUDP socket and one
// goroutine calling ReadFromUDP (and WriteToUDP to echo). TCP: net.Listen
// and one goroutine per connection, reading and writing back.
//
//	naive [--proto udp|tcp] [--handler echo|discard] [--rcvbuf BYTES] ADDR
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
	fs := flag.NewFlagSet("naive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	handler := fs.String("handler", "echo", "echo (reply with the payload) or discard")
	proto := fs.String("proto", "udp", "udp or tcp")
	rcvbuf := fs.Int("rcvbuf", 0, "receive buffer to ask with SetReadBuffer (capped by net.core.rmem_max); 0 keeps the kernel default")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: naive [--proto udp|tcp] [--handler echo|discard] [--rcvbuf BYTES] ADDR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || (*handler != "echo" && *handler != "discard") || *rcvbuf < 0 || (*proto != "udp" && *proto != "tcp") {
		fs.Usage()
		return 2
	}
	if *proto == "tcp" {
		return runTCP(fs.Arg(0), *handler == "echo", stdout, stderr)
	}
	addr, err := net.ResolveUDPAddr("udp", fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "naive: %v\n", err)
		return 2
	}
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "naive: %v\n", err)
		return 1
	}
	if *rcvbuf > 0 {
		if err := c.SetReadBuffer(*rcvbuf); err != nil {
			fmt.Fprintf(stderr, "naive: %v\n", err)
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
		fmt.Fprintf(stderr, "naive: %v\n", err)
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

// runTCP is the naive TCP server: a goroutine per connection.
func runTCP(addr string, echo bool, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "naive: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	var received atomic.Uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					received.Add(uint64(n))
					if echo {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ln.Close()
	fmt.Fprintf(stdout, "received %d bytes\n", received.Load())
	return 0
}
