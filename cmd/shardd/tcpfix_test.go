//go:build linux

package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestMaxFrameRaisesMemoryDefaults: a --max-frame whose frame and replies
// do not fit the default --max-conn-memory raises that default (and the
// shard's) instead of failing on a flag the user never gave, on a UDP-only
// run and with TCP; a --max-conn-memory given too small still fails.
func TestMaxFrameRaisesMemoryDefaults(t *testing.T) {
	for _, proto := range []string{"udp", "udp,tcp"} {
		t.Run(proto, func(t *testing.T) {
			d := startDaemon(t, "--proto", proto, "--max-frame", "100000", "--shards", "1", "127.0.0.1:0")
			bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
			if strings.Contains(proto, "tcp") {
				c := testkit.DialTCP(t, bound.String())
				_ = c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
				msg := []byte("hello over tcp")
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("TCP echo: %q, %v", got, err)
				}
			}
			if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, d.Stderr)
			}
		})
	}
	for _, args := range [][]string{
		{"--max-frame", "100000", "--max-conn-memory", "256K", "127.0.0.1:0"},
		{"--proto", "udp,tcp", "--max-frame", "100000", "--max-conn-memory", "256K", "127.0.0.1:0"},
	} {
		var stdout, stderr bytes.Buffer
		want := "--max-conn-memory 262144: must hold one frame and one message's replies: at least 300272 with --max-frame 100000"
		if code := runBounded(t, args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", args, code, stderr.String(), exitUsage, want)
		}
	}
}

// TestMaxConnsPerIPDefaultFollowsMaxConns: with --max-conns 16 and no
// --max-conns-per-ip, one address gets a quarter of the slots (4), not 256
// (which would be no limit at all).
func TestMaxConnsPerIPDefaultFollowsMaxConns(t *testing.T) {
	d, addr, url := tcpDaemon(t, false, "--shards", "1", "--max-conns", "16")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			if i < 4 {
				t.Fatal(err)
			}
			continue // the refusal (RST) can come before connect returns
		}
		conns = append(conns, c)
		if i < 4 {
			// Served before the next connection comes.
			_ = c.SetDeadline(time.Now().Add(testkit.WaitTimeout))
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
	}
	testkit.PollFor(t, "the fifth connection refused per address", testkit.WaitTimeout, func() bool {
		return testkit.MetricSum(testkit.Scrape(t, url), "shardd_tcp_closed_total", `reason="per_ip_limit"`) == 1
	})
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
}
