package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
	"github.com/shardd/shardd/shard/netnstest"
)

// xdpPort is the port the daemon serves in the test's own namespace B.
const xdpPort = 5353

// startXDPDaemon starts shardd in namespace B (forked from a thread in
// B) with --xdp on B's end of the pair, as cred (nil: as the test).
func startXDPDaemon(t *testing.T, p *netnstest.Pair, cred *syscall.Credential, args ...string) *daemon {
	t.Helper()
	bin := sharddBin(t)
	var d *daemon
	p.B.Run(t, func() {
		cmd := exec.Command(bin, append([]string{"--log-format", "json", "--xdp", p.DevB}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		d = testkit.Start(t, "shardd", cmd)
	})
	return d
}

// scrapeIn fetches url from within namespace ns.
func scrapeIn(t *testing.T, ns *netnstest.NS, url string) string {
	t.Helper()
	page, err := testkit.GetVia(ns.HTTPClient(testkit.WaitTimeout), url)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// digIn runs dig in namespace ns against server.
func digIn(t *testing.T, ns *netnstest.NS, server string, args ...string) string {
	t.Helper()
	dig := requireTool(t, "dig")
	out, err := ns.Command(dig, append([]string{"@" + server, "-p", fmt.Sprint(xdpPort), "+time=5", "+tries=3", "+notcp", "+nocmd"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status: ") {
		t.Fatalf("dig @%s %v in %s: %v\n%s", server, args, ns.Name, err, out)
	}
	return string(out)
}

// TestXDPSameDNSAnswersAsUDP asks shardd --xdp the same questions over the
// veth pair (AF_XDP: the program redirects them) and over loopback inside
// its namespace (the UDP sockets: lo has no program), IPv4 and IPv6, and
// compares everything dig prints but the IDs and timings (a truncated
// answer's retry over TCP reaches the kernel's TCP listener on the same
// port). The metrics count each path exactly, shardd inspect shows the
// program, and the stop detaches.
func TestXDPSameDNSAnswersAsUDP(t *testing.T) {
	p := netnstest.NewPair(t, 2)
	var zones []string
	for _, z := range knotZones {
		zones = append(zones, "--zone", "../../testdata/dns/"+z+".zone")
	}
	d := startXDPDaemon(t, p, nil, append(zones, "--handler", "dns", "--proto", "udp,tcp", "--shards", "2", "--metrics", "127.0.0.1:0", fmt.Sprintf(":%d", xdpPort))...)
	attached := d.WaitLine(t, "XDP program attached")
	d.WaitLine(t, "listening")
	metricsURL := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	t.Logf("attached: %v", attached)
	questions := [][]string{
		{"example.com", "SOA"}, {"example.com", "ANY"}, {"www.example.com", "A"}, {"-x", "192.0.2.1"},
		{"a.b.apps.example.com", "TXT"}, {"nope.example.com", "A"}, {"sub.example.com", "NS"}, {"example.org", "A"},
		{"+bufsize=4096", "huge.example.com", "TXT"}, {"+bufsize=4096", "big.example.com", "TXT"}, {"+noedns", "big.example.com", "TXT"}, {`bin\000x.edge.test`, "A"},
		{"+bufsize=1232", "big.edge.test", "A"}, {"child.edge.test", "DS"},
	}
	volatile := regexp.MustCompile(`(?m)(id: \d+|^;; (Query time|SERVER|WHEN|MSG SIZE).*$|; COOKIE: .*$)`)
	for _, fam := range []struct{ xdp, udp string }{{p.B4.String(), "127.0.0.1"}, {p.B6.String(), "::1"}} {
		for _, q := range questions {
			viaXDP := volatile.ReplaceAllString(digIn(t, p.A, fam.xdp, q...), "")
			viaUDP := volatile.ReplaceAllString(digIn(t, p.B, fam.udp, q...), "")
			if viaXDP != viaUDP {
				t.Errorf("dig %v: AF_XDP and UDP answers differ\n--- xdp @%s\n%s\n--- udp @%s\n%s", q, fam.xdp, viaXDP, fam.udp, viaUDP)
			}
		}
	}
	text := scrapeIn(t, p.B, metricsURL)
	want := float64(2 * len(questions))
	xdpRx := testkit.MetricSum(text, "shardd_rx_packets_total", `proto="xdp"`)
	udpRx := testkit.MetricSum(text, "shardd_rx_packets_total", `proto="udp"`)
	xdpTx := testkit.MetricSum(text, "shardd_tx_packets_total", `proto="xdp"`)
	if xdpRx != want || udpRx != want || xdpTx != want {
		t.Errorf("queries %v each way: xdp rx %v tx %v, udp rx %v", want, xdpRx, xdpTx, udpRx)
	}
	for _, name := range []string{"shardd_xdp_rx_dropped_total", "shardd_xdp_rx_invalid_total", "shardd_xdp_rx_ring_full_total",
		"shardd_xdp_fill_ring_empty_total", "shardd_xdp_tx_invalid_total", "shardd_xdp_tx_ring_empty_total"} {
		if _, series := testkit.SumMetric(t, text, name); series != 2 {
			t.Errorf("%s: %d series, want 2 (one per shard)", name, series)
		}
	}
	inspect, err := p.B.Command(sharddBin(t), "inspect", fmt.Sprint(xdpPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(inspect), p.B4.String()+":5353") || !strings.Contains(string(inspect), "["+p.B6.String()+"]:5353") || !strings.Contains(string(inspect), " on "+p.DevB+" ") {
		t.Errorf("shardd inspect shows no program on %s: %v\n%s", p.DevB, err, inspect)
	}
	t.Logf("shardd inspect:\n%s", inspect)
	checkInspectJSONShowsXDP(t, p)
	if code := d.StopWithin(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	if out := p.B.IP(t, "link", "show", p.DevB); strings.Contains(out, "xdp") {
		t.Fatalf("the program is still attached after the stop:\n%s", out)
	}
}

// TestXDPUnprivilegedStart: shardd --xdp started as nobody (no
// CAP_NET_ADMIN, CAP_BPF or CAP_NET_RAW) exits 1 with one line that says
// what it needs. As root the same command starts (the other tests), so the
// refusal is the missing privilege.
func TestXDPUnprivilegedStart(t *testing.T) {
	p := netnstest.NewPair(t, 1)
	d := startXDPDaemon(t, p, &syscall.Credential{Uid: 65534, Gid: 65534}, fmt.Sprintf(":%d", xdpPort))
	select {
	case <-d.Exited:
	case <-time.After(testkit.WaitTimeout):
		t.Fatalf("shardd --xdp as nobody did not exit:\n%s", d.Stderr)
	}
	out := strings.TrimSpace(d.Stderr.String())
	if d.Code != 1 || strings.Count(out, "\n") != 0 || !strings.Contains(out, "CAP_BPF") || !strings.Contains(out, p.DevB) {
		t.Fatalf("exit %d, want 1 with one line naming the interface and the capabilities:\n%s", d.Code, out)
	}
	t.Logf("as nobody: %s", out)
}

// checkInspectJSONShowsXDP: `shardd inspect --json` lists the program on
// p.DevB with its listeners: one entry per AF_XDP socket (2 shards, queues
// 0 and 1), or one for the program, saying why, where the kernel cannot
// list AF_XDP sockets (no CONFIG_XDP_SOCKETS_DIAG).
func checkInspectJSONShowsXDP(t *testing.T, p *netnstest.Pair) {
	t.Helper()
	out, err := p.B.Command(sharddBin(t), "inspect", "--json", fmt.Sprint(xdpPort)).Output()
	if err != nil {
		t.Fatalf("shardd inspect --json: %v\n%s", err, out)
	}
	var entries []struct {
		Proto string `json:"proto"`
		XDP   *struct {
			Iface        string   `json:"iface"`
			Queue        *int     `json:"queue"`
			ProgramID    uint32   `json:"program_id"`
			Listeners    []string `json:"listeners"`
			SocketsError string   `json:"sockets_error"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("shardd inspect --json: %v\n%s", err, out)
	}
	queues := map[int]bool{}
	var unlisted int
	for _, e := range entries {
		if e.Proto != "xdp" {
			continue
		}
		if e.XDP == nil || e.XDP.Iface != p.DevB || e.XDP.ProgramID == 0 || !slices.Contains(e.XDP.Listeners, p.B4.String()+":5353") {
			t.Fatalf("an xdp entry without the program on %s and its listener %s:5353:\n%s", p.DevB, p.B4, out)
		}
		switch {
		case e.XDP.Queue != nil:
			queues[*e.XDP.Queue] = true
		case e.XDP.SocketsError != "":
			unlisted++
		}
	}
	if !(len(queues) == 2 && queues[0] && queues[1] && unlisted == 0) && !(len(queues) == 0 && unlisted == 1) {
		t.Fatalf("want the AF_XDP sockets of queues 0 and 1, or one program entry saying why they are not listed:\n%s", out)
	}
}
