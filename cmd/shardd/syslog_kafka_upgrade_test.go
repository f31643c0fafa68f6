//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestSyslogKafkaUpgradeUnderLoad upgrades shardd --sink kafka:// three
// times (SIGUSR2) under a steady stream of numbered syslog datagrams; each
// old process produces what it accepted and waits for the brokers' acks
// before it exits. Over the four processes received = written, nothing is
// dropped, and the topic holds exactly the written records, each number
// at most once (no duplicates).
func TestSyslogKafkaUpgradeUnderLoad(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "syslog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	pidfile := filepath.Join(t.TempDir(), "shardd.pid")
	d, port, _ := startSyslog(t, "kafka://"+broker+"/syslog", "--pidfile", pidfile)
	up := testkit.NewUpgrades(t, pidfile)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // at most 200000 datagrams, one every 100 µs or so
		for i := 0; i < 200000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := fmt.Fprintf(conn, "<13>1 - h app - - - seq %d", i); err == nil {
				sent.Add(1)
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	waitSent := func(n int64) {
		t.Helper()
		testkit.PollFor(t, fmt.Sprintf("%d datagrams sent", n), testkit.WaitTimeout, func() bool { return sent.Load() >= n })
	}
	const upgrades = 3
	for range upgrades {
		waitSent(sent.Load() + 500)
		up.Upgrade(t)
	}
	waitSent(sent.Load() + 500)
	close(stop)
	wg.Wait()
	last := up.Last()

	if err := syscall.Kill(last, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	received, written := waitClosedLines(t, d, upgrades+1)
	t.Logf("sent %d datagrams through %d upgrades: received %d, written %d", sent.Load(), upgrades, received, written)
	if written != received || received < upgrades*500 {
		t.Fatalf("received %d, written %d (sent %d):\n%s", received, written, sent.Load(), d.Stderr)
	}
	seen := map[string]bool{}
	for _, v := range consumeValues(t, broker, int(written)) {
		var r map[string]any
		if err := json.Unmarshal(v, &r); err != nil {
			t.Fatal(err)
		}
		msg, _ := r["message"].(string)
		if seen[msg] {
			t.Fatalf("%q produced twice", msg)
		}
		seen[msg] = true
	}
}

// waitClosedLines waits until n processes logged "syslog sink closed" and
// sums their received and written counts; each must have dropped nothing.
func waitClosedLines(t *testing.T, d *daemon, n int) (received, written int64) {
	t.Helper()
	for deadline := time.Now().Add(testkit.WaitTimeout); ; time.Sleep(50 * time.Millisecond) {
		received, written = 0, 0
		k := 0
		for _, l := range strings.Split(d.Stderr.String(), "\n") {
			var m struct {
				Msg                        string
				Received, Written, Dropped int64
			}
			if json.Unmarshal([]byte(l), &m) != nil || m.Msg != "syslog sink closed" {
				continue
			}
			if m.Dropped != 0 {
				t.Fatalf("a process dropped %d records:\n%s", m.Dropped, d.Stderr)
			}
			k++
			received += m.Received
			written += m.Written
		}
		if k >= n {
			return received, written
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes closed their sink, want %d:\n%s", k, n, d.Stderr)
		}
	}
}
