//go:build linux

package main

import (
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestAttackTCPStopWithTricklingClient: a client that sends one byte every
// 2 ms and never completes a message cannot hold a graceful stop: the
// daemon closes it (it owes it nothing) and exits 0 without reaching
// --drain-timeout. Before the fix, the grace a fresh connection gets for a
// request on its way was measured from the last byte, so the trickle kept
// it open until the drain timeout cut it and the daemon exited 1.
func TestAttackTCPStopWithTricklingClient(t *testing.T) {
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			d, addr, _ := tcpDaemon(t, true, "--tcp-shape", shape, "--shards", "1", "--handler", "dns",
				"--zone", "../../testdata/dns/example.com.zone", "--drain-timeout", "10s")
			c := testkit.DialTCP(t, addr.String())
			// A frame announcing 65535 bytes, one byte every 2 ms: never a
			// message (and never a pause the old grace would have ended on,
			// unless the machine stalls the client for 50 ms).
			var sent atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				frame := append([]byte{0xff, 0xff}, make([]byte, 65535)...)
				end := time.Now().Add(40 * time.Second)
				for _, b := range frame { // bounded: 40 s
					if time.Now().After(end) {
						return
					}
					_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Write([]byte{b}); err != nil {
						return // the daemon closed it
					}
					sent.Add(1)
					time.Sleep(2 * time.Millisecond)
				}
			}()
			testkit.PollFor(t, "the client trickling", testkit.WaitTimeout, func() bool { return sent.Load() >= 5 })
			code, took := d.Stop(t, syscall.SIGTERM)
			c.Close()
			<-done
			timedOut := strings.Contains(d.Stderr.String(), "graceful stop timed out")
			t.Logf("attack: %s: SIGTERM with a client trickling a byte every 2 ms: exit %d after %v (%d bytes sent, drain timeout reached: %v)",
				shape, code, took.Round(time.Millisecond), sent.Load(), timedOut)
			if code != 0 || timedOut {
				t.Fatalf("exit %d, drain timeout reached: %v; want exit 0 before --drain-timeout (the client was owed nothing):\n%s", code, timedOut, d.Stderr)
			}
		})
	}
}

// TestAttackTCPStopWithClientThatNeverReads: SIGTERM while a client that
// never reads holds replies the kernel accepted but it never acknowledged.
// Lingering for them ends once the client has taken nothing for
// --write-timeout: the stop does not wait for --drain-timeout and exits 0
// (those replies were sent: the kernel took them and still tries to deliver
// them after the close). Before the fix the connection lingered until the
// drain timeout cut it: exit 1.
func TestAttackTCPStopWithClientThatNeverReads(t *testing.T) {
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			d, addr, url := tcpDaemon(t, true, "--tcp-shape", shape, "--shards", "1", "--handler", "dns",
				"--zone", "../../testdata/dns/example.com.zone", "--write-timeout", "1s", "--drain-timeout", "10s")
			// A small receive buffer, set before the connect.
			dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}
			c, err := dialer.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const queries = 200 // ~300 KB of answers: more than the client's buffer, less than the daemon's send buffer
			q := hugeTXTQuery()
			_ = c.SetWriteDeadline(time.Now().Add(testkit.WaitTimeout))
			if _, err := c.Write(bytes.Repeat(q, queries)); err != nil {
				t.Fatal(err)
			}
			testkit.PollFor(t, "the queries received", testkit.WaitTimeout, func() bool {
				return testkit.MetricSum(testkit.Scrape(t, url), "shardd_rx_packets_total", `proto="tcp"`) >= queries
			})
			code, took := d.Stop(t, syscall.SIGTERM)
			timedOut := strings.Contains(d.Stderr.String(), "graceful stop timed out")
			t.Logf("attack: %s: SIGTERM with a client that never reads %d answers: exit %d after %v (drain timeout reached: %v)",
				shape, queries, code, took.Round(time.Millisecond), timedOut)
			if code != 0 || timedOut {
				t.Fatalf("exit %d, drain timeout reached: %v; want exit 0 once --write-timeout passed without progress:\n%s", code, timedOut, d.Stderr)
			}
		})
	}
}
