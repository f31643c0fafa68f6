//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestAttackMetricsIdleFlood: a client that opens a connection and sends
// nothing every 5 ms, from the scraper's own address and from nine others,
// against the daemon's --metrics (default limits: a connection without a
// request used to keep its slot for 1 s). Each of 20 scrapes, made once
// with no retry during the flood, succeeds.
func TestAttackMetricsIdleFlood(t *testing.T) {
	_, _, url := metricsDaemon(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	var opened atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer testkit.CloseAll(&held)
		end := time.Now().Add(60 * time.Second)
		for i := 0; i < 20000 && time.Now().Before(end); i++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%10))}, Timeout: 10 * time.Second}
			if c, err := d.Dial("tcp", addr); err == nil {
				held = append(held, c)
				opened.Add(1)
			}
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		<-quit
	}()
	// The flood holds every slot before the first scrape: more than the
	// cap opened, and they keep coming.
	for deadline := time.Now().Add(60 * time.Second); opened.Load() < 2*metricsCap; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flood did not get going")
		}
	}
	const scrapes = 20
	ok := 0
	var last string
	start := time.Now()
	for i := 0; i < scrapes; i++ {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, nw, a string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
				return d.DialContext(ctx, nw, a)
			}}}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok++
				last = string(b)
				continue
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		t.Errorf("scrape %d during the flood: %v", i, err)
	}
	took := time.Since(start)
	close(quit)
	<-done
	if ok != scrapes {
		t.Errorf("%d of %d scrapes succeeded during the flood", ok, scrapes)
	}
	t.Logf("attack: an idle /metrics connection every 5 ms from 10 addresses (%d opened): %d of %d scrapes succeeded first time, in %v; evicted %v, refused %v full, %v at the per-source cap",
		opened.Load(), ok, scrapes, took.Round(time.Millisecond), testkit.MetricSum(last, "shardd_metrics_http_closed_total", `reason="evicted"`),
		testkit.MetricSum(last, "shardd_metrics_http_closed_total", `reason="full"`), testkit.MetricSum(last, "shardd_metrics_http_closed_total", `reason="source"`))
}
