//go:build linux

package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

var exampleZones = []string{"--zone", "../../testdata/dns/example.com.zone", "--zone", "../../testdata/dns/2.0.192.in-addr.arpa.zone"}

// dnsDaemon starts shardd --handler dns on UDP and TCP; it returns the
// daemon, its port and its metrics URL.
func dnsDaemon(t *testing.T, zones ...string) (*daemon, netip.AddrPort, string) {
	t.Helper()
	args := append([]string{"--handler", "dns", "--proto", "udp,tcp", "--shards", "2", "--metrics", "127.0.0.1:0"}, zones...)
	d := startDaemon(t, append(args, "127.0.0.1:0")...)
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"
	return d, bound, url
}

// digReply is what dig or kdig printed about one reply.
type digReply struct {
	out                         string
	status                      string
	flags                       map[string]bool
	question                    string
	answer, authority, addition []string
	tcp                         bool // the reply that was printed came over TCP
}

var (
	statusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`(?i);; flags: ([a-z ]*);`)
)

// dig runs dig or kdig against addr and parses its output. Both print the
// same section headers; kdig separates header fields with ";".
func dig(t *testing.T, tool string, addr netip.AddrPort, args ...string) digReply {
	t.Helper()
	bin := requireTool(t, tool)
	all := []string{"@" + addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())), "+norecurse"}
	// One try with a long timeout: a retry after a late (not lost) reply
	// would be a second query, counted twice in the metrics some tests
	// check, and loopback does not lose datagrams.
	if tool == "dig" {
		all = append(all, "+time=30", "+tries=1")
	} else {
		all = append(all, "+time=30", "+retry=0")
	}
	out, err := exec.Command(bin, append(all, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	r := digReply{out: string(out), flags: map[string]bool{}}
	if m := statusRE.FindStringSubmatch(r.out); m != nil {
		r.status = m[1]
	}
	if m := flagsRE.FindAllStringSubmatch(r.out, -1); m != nil {
		for _, f := range strings.Fields(m[len(m)-1][1]) {
			r.flags[f] = true
		}
	}
	r.tcp = strings.Contains(r.out, "(TCP)")
	var section *[]string
	for _, line := range strings.Split(r.out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; QUESTION SECTION:"):
			section = nil
			r.question = "next"
		case r.question == "next":
			r.question = strings.Fields(strings.TrimLeft(line, ";"))[0]
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = &r.answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = &r.authority
		case strings.HasPrefix(line, ";; ADDITIONAL SECTION:"):
			section = &r.addition
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			*section = append(*section, strings.Join(strings.Fields(line), " "))
		}
	}
	return r
}

// digShort asks addr for name and qtype with dig +short, one try of 1 s:
// what dig printed, "" when no answer came (a server still starting).
func digShort(t *testing.T, addr netip.AddrPort, name, qtype string) string {
	t.Helper()
	out, _ := exec.Command(requireTool(t, "dig"), "@"+addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())),
		"+time=1", "+tries=1", "+short", "+norecurse", name, qtype).Output()
	return string(out)
}

// waitDigShort polls addr until its answer to name and qtype (digShort)
// contains want; after testkit.WaitTimeout it fails with the last answer
// and logs, the server's log.
func waitDigShort(t *testing.T, addr netip.AddrPort, name, qtype, want string, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitTimeout)
	for {
		out := digShort(t, addr, name, qtype)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never served %q for %s %s (last %q); its log:\n%s", addr, want, name, qtype, out, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r digReply) has(section []string, want string) bool {
	for _, l := range section {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// TestDigAndKdig asks dig and kdig, over UDP and TCP, for every record type
// and each answer shape, and checks what they print.
func TestDigAndKdig(t *testing.T) {
	_, addr, _ := dnsDaemon(t, exampleZones...)
	type check struct {
		args      []string
		status    string
		aa        bool
		answer    []string // substrings, each in some answer line
		authority []string
		addition  []string
	}
	soa := "SOA ns1.example.com. hostmaster.example.com. 2026112501"
	checks := []check{
		{[]string{"example.com", "SOA"}, "NOERROR", true, []string{soa}, nil, nil},
		{[]string{"example.com", "NS"}, "NOERROR", true, []string{"NS ns1.example.com.", "NS ns2.example.com."}, nil, []string{"ns1.example.com. 3600 IN A 192.0.2.53"}},
		{[]string{"example.com", "A"}, "NOERROR", true, []string{"example.com. 3600 IN A 192.0.2.1"}, nil, nil},
		{[]string{"example.com", "AAAA"}, "NOERROR", true, []string{"IN AAAA 2001:db8::1"}, nil, nil},
		{[]string{"example.com", "MX"}, "NOERROR", true, []string{"MX 10 mail.example.com.", "MX 20 mail2.example.net."}, nil, []string{"mail.example.com. 3600 IN A 192.0.2.25"}},
		{[]string{"example.com", "TXT"}, "NOERROR", true, []string{`TXT "v=spf1 mx -all"`}, nil, nil},
		{[]string{"example.com", "CAA"}, "NOERROR", true, []string{`CAA 0 issue "letsencrypt.org"`}, nil, nil},
		{[]string{"_sip._udp.example.com", "SRV"}, "NOERROR", true, []string{"SRV 10 60 5060 sip.example.com."}, nil, []string{"sip.example.com. 3600 IN A 192.0.2.60"}},
		{[]string{"-x", "192.0.2.1"}, "NOERROR", true, []string{"1.2.0.192.in-addr.arpa. 86400 IN PTR example.com."}, nil, nil},
		{[]string{"www.example.com", "CNAME"}, "NOERROR", true, []string{"www.example.com. 3600 IN CNAME web.example.com."}, nil, nil},
		// CNAME chain, wildcard, wildcard CNAME.
		{[]string{"www.example.com", "A"}, "NOERROR", true, []string{"CNAME web.example.com.", "web.example.com. 3600 IN CNAME web-1.hosts.example.com.", "web-1.hosts.example.com. 3600 IN A 192.0.2.80"}, nil, nil},
		{[]string{"zz9.apps.example.com", "A"}, "NOERROR", true, []string{"zz9.apps.example.com. 3600 IN A 192.0.2.100"}, nil, nil},
		{[]string{"zz9.alias.example.com", "AAAA"}, "NOERROR", true, []string{"zz9.alias.example.com. 3600 IN CNAME web.example.com.", "web-1.hosts.example.com. 3600 IN AAAA 2001:db8::80"}, nil, nil},
		// Referral: no AA, NS in authority, glue in additional.
		{[]string{"host.sub.example.com", "A"}, "NOERROR", false, nil, []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.example.net."}, []string{"ns1.sub.example.com. 3600 IN A 192.0.2.153"}},
		// Negative answers: the SOA with the negative TTL (min(3600, 300)).
		{[]string{"nope.example.com", "A"}, "NXDOMAIN", true, nil, []string{"example.com. 300 IN " + soa}, nil},
		{[]string{"ftp.example.com", "TXT"}, "NOERROR", true, nil, []string{"example.com. 300 IN " + soa}, nil},
		{[]string{"b.example.com", "A"}, "NOERROR", true, nil, []string{"example.com. 300 IN " + soa}, nil},
		{[]string{"example.org", "A"}, "REFUSED", false, nil, nil, nil},
		// Large answers: over EDNS, and over TCP after TC.
		{[]string{"+bufsize=1232", "big.example.com", "TXT"}, "NOERROR", true, []string{`"0123456789`, `"5123456789`}, nil, nil},
		{[]string{"+tcp", "huge.example.com", "TXT"}, "NOERROR", true, []string{`"00123456789`, `"50123456789`}, nil, nil},
	}
	for _, tool := range []string{"dig", "kdig"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			for _, c := range checks {
				r := dig(t, tool, addr, append([]string{transport}, c.args...)...)
				ok := r.status == c.status && r.flags["aa"] == c.aa && r.flags["qr"] && !r.flags["tc"] && !r.flags["ra"]
				for _, w := range c.answer {
					ok = ok && r.has(r.answer, w)
				}
				for _, w := range c.authority {
					ok = ok && r.has(r.authority, w)
				}
				for _, w := range c.addition {
					ok = ok && r.has(r.addition, w)
				}
				if c.answer == nil {
					ok = ok && len(r.answer) == 0
				}
				if !ok {
					t.Errorf("%s %s %v: want %s aa=%v answer %q authority %q additional %q; got:\n%s", tool, transport, c.args, c.status, c.aa, c.answer, c.authority, c.addition, r.out)
				}
			}
		}
	}
}

// TestDigIPv6 serves a dual-stack :0 and asks over IPv6 and IPv4, both
// transports.
func TestDigIPv6(t *testing.T) {
	d := startDaemon(t, append([]string{"--handler", "dns", "--proto", "udp,tcp", "--shards", "2"}, append(exampleZones, ":0")...)...)
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	for _, ip := range []string{"::1", "127.0.0.1"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			r := dig(t, "dig", netip.AddrPortFrom(netip.MustParseAddr(ip), port), transport, "example.com", "AAAA")
			if r.status != "NOERROR" || !r.has(r.answer, "2001:db8::1") || !r.flags["aa"] {
				t.Errorf("%s %s:\n%s", ip, transport, r.out)
			}
		}
	}
}

// TestTCPRepliesIgnoreMaxFrame: --max-frame bounds what clients send, not
// the answers: a 1.6 KB answer to a small query goes whole over TCP.
func TestTCPRepliesIgnoreMaxFrame(t *testing.T) {
	_, addr, _ := dnsDaemon(t, append([]string{"--max-frame", "512"}, exampleZones...)...)
	if r := dig(t, "dig", addr, "+tcp", "huge.example.com", "TXT"); r.flags["tc"] || len(r.answer) != 6 {
		t.Errorf("dig +tcp with --max-frame 512:\n%s", r.out)
	}
}

// TestDigTruncationAndRetry: an answer over the client's payload size comes
// back with TC over UDP, and dig and kdig retry over TCP and get it all.
func TestDigTruncationAndRetry(t *testing.T) {
	_, addr, url := dnsDaemon(t, exampleZones...)
	for _, c := range []struct {
		tool string
		args []string
	}{
		{"dig", []string{"+noedns", "big.example.com", "TXT"}},
		{"dig", []string{"+bufsize=512", "big.example.com", "TXT"}},
		{"dig", []string{"+bufsize=4096", "huge.example.com", "TXT"}},
		{"kdig", []string{"+bufsize=4096", "huge.example.com", "TXT"}},
		{"kdig", []string{"+noedns", "big.example.com", "TXT"}},
	} {
		r := dig(t, c.tool, addr, c.args...)
		if !r.tcp || len(r.answer) != 6 || r.status != "NOERROR" || r.flags["tc"] || !strings.Contains(strings.ToLower(r.out), "truncated") {
			t.Errorf("%s %v: want a truncated UDP reply, then 6 TXT over TCP; got:\n%s", c.tool, c.args, r.out)
		}
	}
	// +ignore keeps dig from retrying: the UDP reply itself shows TC and no answers.
	r := dig(t, "dig", addr, "+ignore", "+noedns", "big.example.com", "TXT")
	if !r.flags["tc"] || len(r.answer) != 0 || r.tcp {
		t.Errorf("dig +ignore: want TC and no answers over UDP; got:\n%s", r.out)
	}
	// Under 1232 bytes with EDNS: no truncation.
	if r := dig(t, "kdig", addr, "+bufsize=1232", "big.example.com", "TXT"); r.tcp || len(r.answer) != 6 {
		t.Errorf("kdig +bufsize=1232 big: want 6 TXT over UDP; got:\n%s", r.out)
	}
	if n, _ := testkit.SumMetric(t, testkit.Scrape(t, url), "shardd_dns_truncated_total"); n != 6 {
		t.Errorf("shardd_dns_truncated_total = %v, want 6 (one per truncated UDP reply)", n)
	}
}

// TestDigErrorsAndEDNS covers FORMERR, NOTIMP, BADVERS and the OPT record.
func TestDigErrorsAndEDNS(t *testing.T) {
	_, addr, url := dnsDaemon(t, exampleZones...)
	// dig +header-only sends no question: FORMERR.
	if r := dig(t, "dig", addr, "+header-only", "example.com"); r.status != "FORMERR" {
		t.Errorf("no question: %s, want FORMERR:\n%s", r.status, r.out)
	}
	if r := dig(t, "dig", addr, "+opcode=status", "example.com"); r.status != "NOTIMP" {
		t.Errorf("opcode STATUS: %s, want NOTIMP:\n%s", r.status, r.out)
	}
	// An unknown EDNS version: BADVERS. dig retries with version 0 and says so.
	r := dig(t, "dig", addr, "+edns=1", "example.com", "A")
	if !strings.Contains(r.out, "BADVERS") || r.status != "NOERROR" || len(r.answer) != 1 {
		t.Errorf("EDNS version 1: want BADVERS then an answer at version 0:\n%s", r.out)
	}
	r = dig(t, "dig", addr, "+edns=1", "+noednsnegotiation", "example.com", "A")
	if r.status != "BADVERS" {
		t.Errorf("EDNS version 1 without negotiation: %s, want BADVERS:\n%s", r.status, r.out)
	}
	// OPT in the reply only when the query had one; our payload size is 1232.
	if r := dig(t, "dig", addr, "example.com", "A"); !strings.Contains(r.out, "udp: 1232") {
		t.Errorf("EDNS query: no OPT with udp 1232 in the reply:\n%s", r.out)
	}
	if r := dig(t, "dig", addr, "+noedns", "example.com", "A"); strings.Contains(r.out, "OPT PSEUDOSECTION") {
		t.Errorf("query without EDNS got an OPT:\n%s", r.out)
	}
	// 0x20: the question comes back in the exact case it was asked.
	// (kdig lower-cases names before sending, so only dig can show it.)
	for _, tool := range []string{"dig"} {
		r := dig(t, tool, addr, "WwW.ExAmPlE.cOm", "A")
		if r.question != "WwW.ExAmPlE.cOm." || r.status != "NOERROR" || len(r.answer) != 3 {
			t.Errorf("%s mixed case: question %q status %s answers %d:\n%s", tool, r.question, r.status, len(r.answer), r.out)
		}
	}
	// A message with QR set is a reply: dropped, counted, never answered.
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply := []byte{0x12, 0x34, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	if _, err := c.Write(reply); err != nil {
		t.Fatal(err)
	}
	// Then a query from the same socket: one flow, served in order by one
	// shard, so had the reply been answered its answer would come first.
	// Waiting for this answer proves the check ran; no fixed wait.
	query := append([]byte{0x56, 0x78, 0x00}, reply[3:]...)
	if _, err := c.Write(query); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	got := make([]byte, 512)
	if n, err := c.Read(got); err != nil || n < 2 || got[0] != 0x56 || got[1] != 0x78 {
		t.Errorf("first datagram back: % x, %v; want the answer to the query (ID 5678): a reply was answered", got[:max(n, 0)], err)
	}
	waitMetric(t, url, "shardd_dns_dropped_total", `reason="response"`, 1)
	waitMetric(t, url, "shardd_dns_malformed_total", "", 1)
	waitMetric(t, url, "shardd_dns_responses_total", `rcode="NOTIMP"`, 1)
	waitMetric(t, url, "shardd_dns_responses_total", `rcode="BADVERS"`, 2)
}

// waitMetric waits until the series of name whose labels contain match sum
// to want.
func waitMetric(t *testing.T, url, name, match string, want float64) {
	t.Helper()
	var got float64
	for deadline := time.Now().Add(testkit.WaitTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = testkit.MetricSum(testkit.Scrape(t, url), name, match); got == want {
			return
		}
	}
	t.Errorf("%s{%s} = %v, want %v", name, match, got, want)
}

// TestZoneReloadOnHUP: HUP swaps in edited zones; a broken edit keeps the
// old zones serving, is logged and counted.
func TestZoneReloadOnHUP(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "reload.test.zone")
	write := func(serial int, a string) {
		text := "$ORIGIN reload.test.\n$TTL 60\n@ SOA ns hm " + strconv.Itoa(serial) + " 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nw A " + a + "\n"
		if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1, "192.0.2.10")
	d, addr, url := dnsDaemon(t, "--zone", zone)
	if r := dig(t, "dig", addr, "w.reload.test", "A"); !r.has(r.answer, "192.0.2.10") {
		t.Fatalf("before reload:\n%s", r.out)
	}
	write(2, "192.0.2.20")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if l := d.WaitLine(t, "zone reloaded"); l["serial"].(float64) != 2 {
		t.Fatalf("reloaded serial %v", l["serial"])
	}
	if r := dig(t, "kdig", addr, "w.reload.test", "A"); !r.has(r.answer, "192.0.2.20") {
		t.Fatalf("after reload:\n%s", r.out)
	}
	write(3, "192.0.2.300") // not an address: the reload fails at line 6
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := d.WaitLine(t, "signal handling failed; the previous state keeps serving")
	if e, _ := l["error"].(string); !strings.Contains(e, zone) || !strings.Contains(e, "line: 6") {
		t.Errorf("reload error %q: want the file and line", e)
	}
	if r := dig(t, "dig", addr, "w.reload.test", "A"); !r.has(r.answer, "192.0.2.20") {
		t.Fatalf("after a failed reload the old zone must serve:\n%s", r.out)
	}
	waitMetric(t, url, "shardd_dns_zone_reload_errors_total", "", 1)
	text := testkit.Scrape(t, url)
	if !strings.Contains(text, "shardd_dns_zone_reloads_total 1\n") || !strings.Contains(text, `shardd_dns_zone_serial{zone="reload.test."} 2`) {
		t.Errorf("reload metrics:\n%s", text)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestZoneStartErrors: a zone that does not load stops the start with one
// line naming the file and line (exit 1); flag misuse is a usage error.
func TestZoneStartErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.zone")
	if err := os.WriteFile(bad, []byte("$ORIGIN bad.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nw MX ten mail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runOnce(t, nil, "--handler", "dns", "--zone", bad, "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("bad zone: exit %d, want 1", code)
	}
	assertOneLine(t, stderr, bad, "line: 5")
	code, stderr = runOnce(t, nil, "--handler", "dns", "--zone", filepath.Join(dir, "missing.zone"), "127.0.0.1:0")
	if code != exitRuntime {
		t.Errorf("missing zone: exit %d, want 1", code)
	}
	assertOneLine(t, stderr, "missing.zone", "no such file")
	code, stderr = runOnce(t, nil, "--handler", "dns", "127.0.0.1:0")
	if code != exitUsage {
		t.Errorf("no --zone: exit %d, want 2", code)
	}
	assertOneLine(t, stderr, "--zone")
	code, stderr = runOnce(t, nil, "--zone", bad, "127.0.0.1:0")
	if code != exitUsage {
		t.Errorf("--zone without --handler dns: exit %d, want 2", code)
	}
	assertOneLine(t, stderr, "--handler dns")
}
