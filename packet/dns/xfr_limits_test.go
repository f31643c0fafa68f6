package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// startBigPrimary serves sec.test with records TXT records of about 4 KB
// each over AXFR, many to a message, on loopback.
func startBigPrimary(t *testing.T, records int) netip.AddrPort {
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
		ch <- &mdns.Envelope{RR: []mdns.RR{soa, ns}}
		for i := 0; i < records; i += 8 {
			var rrs []mdns.RR
			for j := i; j < min(i+8, records); j++ {
				rrs = append(rrs, &mdns.TXT{Hdr: mdns.RR_Header{Name: "big.sec.test.", Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: 300}, Txt: append([]string{string(rune('a' + j%26)), strings.Repeat("y", j%200)}, txt...)})
			}
			ch <- &mdns.Envelope{RR: rrs}
		}
		ch <- &mdns.Envelope{RR: []mdns.RR{soa}}
		close(ch)
		<-done
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
