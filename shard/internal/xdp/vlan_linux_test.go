package xdp

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/shardd/shardd/shard/netnstest"
)

// TestVLANOffload reads veth's rx and tx VLAN offload (both on when the
// pair is made), turns each off in turn and reads them back, as ethtool
// -k shows them where it is installed; an unknown interface is an error
// naming it.
func TestVLANOffload(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	check := func(wantRx, wantTx bool) {
		t.Helper()
		var rx, tx bool
		var err error
		p.B.Run(t, func() { rx, tx, err = VLANOffload(p.DevB) })
		if err != nil || rx != wantRx || tx != wantTx {
			t.Fatalf("VLANOffload(%s) = rx %v, tx %v, %v; want rx %v, tx %v", p.DevB, rx, tx, err, wantRx, wantTx)
		}
		if _, lerr := exec.LookPath("ethtool"); lerr != nil {
			return
		}
		out, err := p.B.Command("ethtool", "-k", p.DevB).CombinedOutput()
		if err != nil {
			t.Fatalf("ethtool -k: %v\n%s", err, out)
		}
		for name, want := range map[string]bool{"rx-vlan-offload": wantRx, "tx-vlan-offload": wantTx} {
			if !strings.Contains(string(out), name+": "+map[bool]string{true: "on", false: "off"}[want]) {
				t.Fatalf("ethtool -k shows, want %s %v:\n%s", name, want, out)
			}
		}
	}
	set := func(rx, tx bool) {
		t.Helper()
		var err error
		p.B.Run(t, func() { err = SetVLANOffload(p.DevB, rx, tx) })
		if err != nil {
			t.Fatal(err)
		}
	}
	check(true, true)
	set(false, true)
	check(false, true)
	set(true, false)
	check(true, false)
	var err error
	p.B.Run(t, func() { _, _, err = VLANOffload("nosuchdev0") })
	if err == nil || !strings.Contains(err.Error(), "nosuchdev0") {
		t.Fatalf("an unknown interface: %v, want an error naming it", err)
	}
}
