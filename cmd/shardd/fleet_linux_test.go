package main

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestFleet: two shardd hosts behind one service address (10.53.0.53 and
// fd53::53), an ECMP route with layer-4 hashing in a router namespace, a
// client namespace, and a health checker that routes only to hosts whose
// /healthz answers (fleet_harness_linux_test.go). In order:
//   - queries from many client source ports spread over both hosts, over
//     IPv4, IPv6 and TCP: every one answered, both hosts' receive counts
//     grow, and by exactly what was sent;
//   - a zone change reaches both hosts (files and HUP for now): every answer
//     through the shared address is the new one, from both hosts;
//   - an upgrade of h1 under a steady query load loses no query, and the
//     checker never withdraws h1;
//   - h2 stopped with TERM is withdrawn from the router, and h1 then answers
//     everything;
//   - h2 started again is announced again and takes its share.
func TestFleet(t *testing.T) {
	f := newFleet(t, 2, 1)
	runFleet(t, f, newFileZones(t, f, fleetZone(1, "10.53.200.1")))
}

// runFleet starts the fleet's hosts with their zones from zones (fleet.test
// at serial 1) and runs TestFleet's steps.
func runFleet(t *testing.T, f *fleet, zones fleetZones) {
	f.start(t, zones)
	h1, h2 := f.hosts[0], f.hosts[1]
	for _, step := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"spread", func(t *testing.T) { fleetSpread(t, f) }},
		{"zone-change", func(t *testing.T) { fleetZoneChange(t, f, zones) }},
		{"upgrade-under-load", func(t *testing.T) { fleetUpgradeUnderLoad(t, f, h1) }},
		{"host-stopped", func(t *testing.T) { fleetHostStopped(t, f, h2, h1) }},
		{"host-back", func(t *testing.T) {
			h2.start(t, zones)
			f.waitRoute(t, h1, h2)
			f.spread(t, fleetService4, 200, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.2", "udp", f.hosts, true)
		}},
	} {
		if !t.Run(step.name, step.run) {
			return
		}
	}
	t.Logf("health checker: %v", f.check.events())
}

// TestFleetLayer3HashKeepsAClientOnOneHost is the control of TestFleet's
// spread: with the router hashing addresses only (policy 0), every query of
// one client goes to one host, however many source ports it uses.
func TestFleetLayer3HashKeepsAClientOnOneHost(t *testing.T) {
	f := newFleet(t, 2, 0)
	f.start(t, newFileZones(t, f, fleetZone(1, "10.53.200.1")))
	got := f.spread(t, fleetService4, 200, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.1", "udp", f.hosts, false)
	slices.Sort(got)
	if got[0] != 0 || got[1] != 200 {
		t.Errorf("layer-3 hashing: per-host counts %v, want all 200 on one host", got)
	}
}

func fleetSpread(t *testing.T, f *fleet) {
	const name = "web-1.hosts.example.com."
	f.spread(t, fleetService4, 200, name, dns.TypeA, "NOERROR 192.0.2.80", "udp", f.hosts, true)
	f.spread(t, fleetService6, 200, name, dns.TypeAAAA, "NOERROR 2001:db8::80", "udp", f.hosts, true)
	before := f.rxAll(t, fleetService4, "tcp", f.hosts)
	const conns = 64
	for range conns {
		if r := f.tcpQuery(t, fleetService4, name, dns.TypeA); answerText(r) != "NOERROR 192.0.2.80" {
			t.Fatalf("TCP: %v", r)
		}
	}
	f.checkDeltas(t, fleetService4, "tcp", f.hosts, before, conns, true)
}

func fleetZoneChange(t *testing.T, f *fleet, zones fleetZones) {
	zones.publish(t, f, fleetZone(2, "10.53.200.2"))
	for _, h := range f.hosts {
		testkit.PollFor(t, h.name+" to serve fleet.test serial 2", testkit.WaitTimeout, func() bool {
			return h.metric(t, "shardd_dns_zone_serial", `zone="fleet.test."`) == 2
		})
	}
	f.spread(t, fleetService4, 200, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.2", "udp", f.hosts, true)
	f.spread(t, fleetService6, 100, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.2", "udp", f.hosts, true)
}

func fleetUpgradeUnderLoad(t *testing.T, f *fleet, h *fleetHost) {
	before := f.rxAll(t, fleetService4, "udp", f.hosts)
	load := f.startLoad(t, fleetService4, 32, "w.fleet.test.", "NOERROR 10.53.200.2")
	testkit.PollFor(t, "the load to reach every host", testkit.WaitTimeout, func() bool {
		now := f.rxAll(t, fleetService4, "udp", f.hosts)
		return now[0] > before[0]+50 && now[1] > before[1]+50
	})
	h.upgrade(t)
	after, mark := h.rx(t, fleetService4, "udp"), load.answered.Load()
	testkit.PollFor(t, "the new process of "+h.name+" to answer under load", testkit.WaitTimeout, func() bool {
		return h.rx(t, fleetService4, "udp") > after+50 && load.answered.Load() > mark+500
	})
	load.stop()
	sent, answered := load.sent.Load(), load.answered.Load()
	t.Logf("upgrade of %s under load: %d queries from 32 source ports, %d answered, %d after the upgrade", h.name, sent, answered, answered-mark)
	if lost := load.failures(); len(lost) > 0 || sent != answered {
		t.Errorf("%d of %d queries lost or answered wrong across the upgrade: %v", sent-answered, sent, lost)
	}
	if ev := f.check.events(); slices.Contains(ev, h.name+" withdrawn") {
		t.Errorf("the health checker withdrew %s during its upgrade: %v", h.name, ev)
	}
}

func fleetHostStopped(t *testing.T, f *fleet, stopped, left *fleetHost) {
	stopped.stop(t)
	f.waitRoute(t, left)
	if ev := f.check.events(); !slices.Contains(ev, stopped.name+" withdrawn") {
		t.Fatalf("the route changed, but the checker logged no withdrawal: %v", ev)
	}
	only := []*fleetHost{left}
	f.spread(t, fleetService4, 200, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.2", "udp", only, true)
	f.spread(t, fleetService6, 100, "w.fleet.test.", dns.TypeA, "NOERROR 10.53.200.2", "udp", only, true)
}

// spread sends one query from each of n client source ports to the service
// address to, requires every reply to be want, and returns how much each
// host's receive count for to grew; their sum must be n, and with everyHost
// each must have received some.
func (f *fleet) spread(t *testing.T, to netip.AddrPort, n int, name string, qtype uint16, want, proto string, hosts []*fleetHost, everyHost bool) []float64 {
	t.Helper()
	before := f.rxAll(t, to, proto, hosts)
	if got := f.queryFromPorts(t, to, n, name, qtype); got[want] != n {
		t.Fatalf("%d queries to %v for %s: answers %v, want %d x %q", n, to, name, got, n, want)
	}
	return f.checkDeltas(t, to, proto, hosts, before, n, everyHost)
}

// checkDeltas waits until the hosts' receive counts for to grew by n in
// all since before, checks that with everyHost each grew, and returns the
// growths.
func (f *fleet) checkDeltas(t *testing.T, to netip.AddrPort, proto string, hosts []*fleetHost, before []float64, n int, everyHost bool) []float64 {
	t.Helper()
	var d []float64
	fleetWait(t, func() bool {
		d = f.rxAll(t, to, proto, hosts)
		sum := 0.0
		for i := range d {
			d[i] -= before[i]
			sum += d[i]
		}
		if sum > float64(n) {
			t.Fatalf("%s receive counts for %v grew by %v: more than the %d queries sent", proto, to, d, n)
		}
		return sum == float64(n)
	}, func() string {
		return fmt.Sprintf("the hosts' %s receive counts for %v to grow by %d; they grew by %v", proto, to, n, d)
	})
	t.Logf("%d %s queries to %v: per host %v", n, proto, to, d)
	for i, v := range d {
		if everyHost && v == 0 {
			t.Errorf("%s received none of %d %s queries to %v: %v", hosts[i].name, n, proto, to, d)
		}
	}
	return d
}

// rxAll is each host's receive count for to.
func (f *fleet) rxAll(t *testing.T, to netip.AddrPort, proto string, hosts []*fleetHost) []float64 {
	t.Helper()
	var out []float64
	for _, h := range hosts {
		out = append(out, h.rx(t, to, proto))
	}
	return out
}
