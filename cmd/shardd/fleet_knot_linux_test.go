package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestFleetKnotPrimary is TestFleet with the hosts as secondaries of a
// Knot DNS primary in a namespace of its own: the zone change is a new
// file and `knotc zone-reload` on the primary, which sends NOTIFY to each
// host's own address; each host transfers the change (IXFR) and serves it.
// A host started again serves its copy from --zone-dir.
func TestFleetKnotPrimary(t *testing.T) {
	f := newFleet(t, 2, 1)
	runFleet(t, f, newKnotFleetPrimary(t, f, fleetZone(1, "10.53.200.1")))
}

// knotFleetPrimary is Knot DNS serving fleet.test on link 2 (10.53.2.2),
// the hosts' primary.
type knotFleetPrimary struct {
	link      *fleetLink
	dir, conf string
}

// newKnotFleetPrimary attaches the primary's namespace to the router,
// starts knotd there with fleet.test at text, NOTIFY to every host's own
// address and transfers allowed to the fleet's addresses, and waits until
// it serves the zone.
func newKnotFleetPrimary(t *testing.T, f *fleet, text string) *knotFleetPrimary {
	t.Helper()
	knotd := requireTool(t, "knotd")
	p := &knotFleetPrimary{link: f.attach(t, "primary", 2), dir: t.TempDir()}
	conf := fmt.Sprintf("server:\n  listen: %s@53\n  rundir: %s\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"+
		"database:\n  storage: %s\nlog:\n  - target: stderr\n    any: info\nremote:\n", p.link.v4, p.dir, p.dir)
	var ids []string
	for _, h := range f.hosts {
		conf += fmt.Sprintf("  - id: %s\n    address: %s@53\n", h.name, h.v4)
		ids = append(ids, h.name)
	}
	conf += "acl:\n  - id: fleet\n    address: 10.53.0.0/16\n    action: transfer\n" +
		"template:\n  - id: default\n    notify: [" + strings.Join(ids, ", ") + "]\n    acl: fleet\n" +
		"    zonefile-load: difference\n    zonefile-sync: -1\n    journal-content: changes\n    semantic-checks: off\n" +
		"zone:\n  - domain: fleet.test\n    file: " + filepath.Join(p.dir, "fleet.test.zone") + "\n"
	p.conf = filepath.Join(p.dir, "knot.conf")
	writeFile(t, p.conf, conf)
	writeFile(t, filepath.Join(p.dir, "fleet.test.zone"), text)
	testkit.Start(t, "knotd", p.link.ns.Command(knotd, "-c", p.conf))
	p.waitServes(t, text)
	return p
}

// waitServes waits until the primary serves the SOA serial of zone text.
func (p *knotFleetPrimary) waitServes(t *testing.T, text string) {
	t.Helper()
	serial := strings.Fields(text[strings.Index(text, "SOA"):])[3]
	testkit.PollFor(t, "knotd to serve fleet.test serial "+serial, testkit.WaitTimeout, func() bool {
		out, _ := p.link.ns.Command(requireTool(t, "dig"), "@"+p.link.v4.String(), "+time=1", "+tries=1", "+short", "fleet.test", "SOA").Output()
		return strings.Contains(string(out), " "+serial+" ")
	})
}

func (p *knotFleetPrimary) hostArgs(t *testing.T, h *fleetHost) []string {
	t.Helper()
	dir := filepath.Join(h.dir, "xfr")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return []string{"--zone", h.exampleZone(t), "--secondary", "fleet.test@" + p.link.v4.String() + ":53", "--zone-dir", dir}
}

// publish changes the primary's zone and waits until every host has taken
// the change by IXFR (Knot keeps the difference in its journal).
func (p *knotFleetPrimary) publish(t *testing.T, f *fleet, text string) {
	t.Helper()
	const ixfr = `result="ok",type="ixfr",zone="fleet.test."`
	before := map[*fleetHost]float64{}
	for _, h := range f.hosts {
		before[h] = h.metric(t, "shardd_dns_transfers_total", ixfr)
	}
	writeFile(t, filepath.Join(p.dir, "fleet.test.zone"), text)
	if out, err := exec.Command(requireTool(t, "knotc"), "-c", p.conf, "zone-reload").CombinedOutput(); err != nil {
		t.Fatalf("knotc zone-reload: %v\n%s", err, out)
	}
	p.waitServes(t, text)
	for _, h := range f.hosts {
		testkit.PollFor(t, h.name+" to transfer the change by IXFR", testkit.WaitTimeout, func() bool {
			return h.metric(t, "shardd_dns_transfers_total", ixfr) > before[h]
		})
	}
}
