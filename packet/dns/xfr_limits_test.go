package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// startBigPrimary serves sec.test with records TXT records of about 4 KB
// each over AXFR, many to a message, on loopback.
func startBigPrimary(t *testing.T, records int) netip.AddrPort {
	return startSlowPrimary(t, records, 8, 0)
}

// startSlowPrimary serves sec.test with records TXT records of about 4 KB
// each over AXFR, perMsg to a message, pausing gap between messages.
func startSlowPrimary(t *testing.T, records, perMsg int, gap time.Duration) netip.AddrPort {
	t.Helper()
	soa, _ := mdns.NewRR("sec.test. 300 SOA ns1.sec.test. hostmaster.sec.test. 1 3600 600 60 300")
	ns, _ := mdns.NewRR("sec.test. 300 NS ns1.sec.test.")
	chunk := strings.Repeat("x", 250)
	txt := make([]string, 16) // 16 strings of 250 bytes: 4 KB of rdata
	for i := range txt {
		txt[i] = chunk
	}
	mux := mdns.NewServeMux()
	mux.HandleFunc("sec.test.", func(w mdns.ResponseWriter, r *mdns.Msg) {
		if r.Question[0].Qtype != mdns.TypeAXFR {
			m := new(mdns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			m.Answer = []mdns.RR{soa}
			_ = w.WriteMsg(m)
			return
		}
		ch := make(chan *mdns.Envelope)
		tr := new(mdns.Transfer)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = tr.Out(w, r, ch)
		}()
		defer func() {
			close(ch)
			<-done
		}()
		send := func(rrs []mdns.RR) bool {
			select {
			case ch <- &mdns.Envelope{RR: rrs}:
				return true
			case <-done: // the secondary hung up
				return false
			}
		}
		if !send([]mdns.RR{soa, ns}) {
			return
		}
		for i := 0; i < records; i += perMsg {
			var rrs []mdns.RR
			for j := i; j < min(i+perMsg, records); j++ {
				rrs = append(rrs, &mdns.TXT{Hdr: mdns.RR_Header{Name: "big.sec.test.", Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: 300}, Txt: append([]string{string(rune('a' + j%26)), strings.Repeat("y", j%200)}, txt...)})
			}
			time.Sleep(gap)
			if !send(rrs) {
				return
			}
		}
		send([]mdns.RR{soa})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{Listener: l, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// TestAttackTransferBytes: a primary that sends few records but large
// ones is cut off at the transfer's byte limit, as one sending too many
// records is at the record limit; no zone is built from it.
func TestAttackTransferBytes(t *testing.T) {
	defer func(old int) { maxXfrBytes = old }(maxXfrBytes)
	maxXfrBytes = 256 << 10
	p := startBigPrimary(t, 200) // 200 records of ~4 KB: 800 KB, far below the record limit
	z := &secondary{Secondary: Secondary{Zone: "sec.test."}, origin: "sec.test."}
	nz, _, err := fetchZone(z, nil, p, xfrAXFR)
	if err == nil || nz != nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("a transfer of 800 KB with a 256 KB limit: %v, %v", nz, err)
	}
	t.Logf("attack: transfer of 200 records of 4 KB refused past %d KB: %v", maxXfrBytes>>10, err)
	maxXfrBytes = 4 << 20
	if nz, _, err = fetchZone(z, nil, p, xfrAXFR); err != nil || nz.Count != 202 {
		t.Fatalf("the same transfer under a 4 MB limit: %v, %v", nz, err)
	}
}

// TestAttackTransferTime: a primary that sends a record a message, each
// in time but never done, is cut off at the transfer's time limit (the
// zone's other primaries and its expiry wait while a transfer runs).
func TestAttackTransferTime(t *testing.T) {
	defer func(old time.Duration) { maxXfrTime = old }(maxXfrTime)
	maxXfrTime = time.Second
	p := startSlowPrimary(t, 1000, 1, 100*time.Millisecond) // 100 s to send it all
	z := &secondary{Secondary: Secondary{Zone: "sec.test."}, origin: "sec.test."}
	start := time.Now()
	nz, _, err := fetchZone(z, nil, p, xfrAXFR)
	if err == nil || nz != nil || !strings.Contains(err.Error(), "longer than 1s") {
		t.Fatalf("a transfer of 100 s with a 1 s limit: %v, %v", nz, err)
	}
	t.Logf("attack: trickling transfer (a record every 100 ms) cut off after %v: %v", time.Since(start).Round(time.Millisecond), err)
}
