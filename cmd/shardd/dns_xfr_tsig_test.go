//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/packet/dns"
)

// primaryInProcess serves zone's primary side in this process: a transfer
// server on 127.0.0.1:port (TCP) with cfg; the TSIG keys go in as the key
// file will give them (name -> base64 secret).
func primaryInProcess(t *testing.T, zone string, port int, cfg dns.PrimaryConfig) *dns.Server {
	t.Helper()
	srv, err := dns.NewServer([]string{zone})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log = zap.NewNop()
	if err := srv.EnablePrimary(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	ts := srv.NewTransferServer(ln, dns.TransferOptions{})
	ts.Start()
	t.Cleanup(func() {
		_ = ts.Stop(context.Background())
		srv.Close()
	})
	return srv
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestKnotSecondaryOfSharddTSIG: as TestKnotSecondaryOfShardd, with
// --allow-transfer key:xfr.key (any address, the key required) and a
// signed NOTIFY: Knot transfers with the key (AXFR, then IXFR after a
// reload); a Knot with a wrong secret for the same key name gets nothing
// (NOTAUTH, counted as badkey) and never serves the zone.
func TestKnotSecondaryOfSharddTSIG(t *testing.T) {
	requireTool(t, "knotd")
	zone := filepath.Join(t.TempDir(), "xfr.test.zone")
	if err := os.WriteFile(zone, []byte(xfrZoneText(1, "192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	port, knotPort, badPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	secret := randomSecret(t)
	knot := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(knotPort))
	srv := primaryInProcess(t, zone, port, dns.PrimaryConfig{
		Allow:  []dns.ACLEntry{{Key: "xfr.key."}},
		Notify: []dns.NotifyTarget{{Addr: knot, Key: "xfr.key."}},
		TSIG:   map[string]string{"xfr.key.": secret},
	})
	knotLog := knotSecondary(t, knotPort, port, "xfr.key:"+secret)
	badLog := knotSecondary(t, badPort, port, "xfr.key:"+randomSecret(t))
	waitSerial(t, knot, "1", knotLog)
	if !strings.Contains(knotLog.String(), "AXFR, incoming") {
		t.Errorf("Knot did not log an incoming AXFR:\n%s", knotLog)
	}
	if err := os.WriteFile(zone, []byte(xfrZoneText(2, "192.0.2.20")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, knot, "2", knotLog)
	testkit.PollFor(t, "Knot's log of the IXFR", testkit.WaitTimeout, func() bool {
		return strings.Contains(knotLog.String(), "IXFR, incoming") && strings.Contains(knotLog.String(), "serial 1 -> 2")
	})
	defer func() {
		if t.Failed() {
			t.Logf("wrong key Knot log:\n%s", badLog)
		}
	}()
	testkit.PollFor(t, "the wrong key's refusal in Knot's log", testkit.WaitTimeout, func() bool {
		return strings.Contains(badLog.String(), "failed to verify TSIG")
	})
	testkit.PollFor(t, "the wrong key counted as badkey", testkit.WaitTimeout, func() bool {
		return transfers(t, srv, "badkey") > 0
	})
	if s := soaSerial(t, netip.MustParseAddrPort("127.0.0.1:"+strconv.Itoa(badPort))); s != "" {
		t.Errorf("the Knot with a wrong secret serves serial %s", s)
	}
	t.Logf("wrong key, Knot logged: %s", firstLine(badLog.String(), "xfr.test"))
}

// transfers returns srv's shardd_dns_transfers_total for xfr.test. and
// result, over both types.
func transfers(t *testing.T, srv *dns.Server, result string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "shardd_dns_transfers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["zone"] == "xfr.test." && labels["result"] == result {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// firstLine returns the first line of text that contains sub.
func firstLine(text, sub string) string {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, sub) && strings.Contains(l, "failed to verify TSIG") {
			return l
		}
	}
	return ""
}
