//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

func TestSyslogUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--handler", "syslog", ":0"}, exitUsage, []string{"--handler syslog needs --sink FILE", "--sink -"}},
		{[]string{"--fsync", "always", ":0"}, exitUsage, []string{"--fsync is for --handler syslog"}},
		{[]string{"--handler", "syslog", "--sink", "-", "--fsync", "sometimes", ":0"}, exitUsage, []string{"--fsync \"sometimes\": want never, interval or always"}},
		{[]string{"--handler", "syslog", "--sink", "-", "--sink-queue", "100K", ":0"}, exitUsage, []string{"--sink-queue 102400: must be at least 1M"}},
		{[]string{"--handler", "syslog", "--sink", "-", "--fsync", "never", "--fsync-interval", "2s", ":0"}, exitUsage, []string{"--fsync-interval needs --fsync interval"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://127.0.0.1:9092", ":0"}, exitUsage, []string{"no topic: want kafka://BROKER[,BROKER...]/TOPIC"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://127.0.0.1:0/t", ":0"}, exitUsage, []string{"the port must be 1 to 65535"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/bad/topic", ":0"}, exitUsage, []string{"a Kafka topic name is"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--kafka-key", "host", ":0"}, exitUsage, []string{"want source or none"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--kafka-acks", "2", ":0"}, exitUsage, []string{"want all, leader or none"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--kafka-compression", "brotli", ":0"}, exitUsage, []string{"want one of zstd, lz4, snappy, gzip, none"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--fsync", "always", ":0"}, exitUsage, []string{"--fsync applies to a file sink"}},
		{[]string{"--handler", "syslog", "--sink", "-", "--kafka-acks", "leader", ":0"}, exitUsage, []string{"--kafka-acks needs --sink kafka://"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--kafka-sasl", "kerberos", ":0"}, exitUsage, []string{"want one of scram-sha-256, scram-sha-512, plain"}},
		{[]string{"--handler", "syslog", "--sink", "kafka://k/t", "--kafka-sasl", "plain", "--kafka-sasl-user", "u", ":0"}, exitUsage, []string{"--kafka-sasl, --kafka-sasl-user and --kafka-sasl-password-file go together"}},
		{[]string{"--handler", "syslog", "--sink", "/nonexistent/dir/out.ndjson", "127.0.0.1:0"}, exitRuntime, []string{"cannot open --sink /nonexistent/dir/out.ndjson: no such file or directory", "create its directory"}},
	} {
		code, stderr := runOnce(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, stderr)
		}
		assertOneLine(t, stderr, tc.want...)
	}
}

// startSyslog starts shardd --handler syslog and returns it with its UDP/TCP
// port and metrics address.
func startSyslog(t *testing.T, sink string, extra ...string) (*daemon, uint16, string) {
	t.Helper()
	args := append([]string{"--handler", "syslog", "--sink", sink, "--shards", "2", "--metrics", "127.0.0.1:0"}, extra...)
	d := startDaemon(t, append(args, "127.0.0.1:0")...)
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	return d, port, d.WaitLine(t, "serving metrics")["addr"].(string)
}

// waitSyslogMetric waits until cond holds for the sum of a metric's series.
func waitSyslogMetric(t *testing.T, metricsAddr, name string, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitTimeout)
	for {
		v, _ := testkit.SumMetric(t, testkit.Scrape(t, "http://"+metricsAddr+"/metrics"), name)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v: condition not met within %v", name, v, testkit.WaitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendPaced sends n datagrams (msg(i) each) over c and, every step of
// them, waits until the daemon has received, or the kernel dropped, all
// sent so far. A loaded machine may not run the daemon for a while: a burst
// larger than the socket buffer would then be dropped by the kernel, which
// no fixed sleep between datagrams can prevent.
func sendPaced(t *testing.T, c *net.UDPConn, metricsAddr string, n, step int, msg func(i int) string) {
	t.Helper()
	accounted := func() float64 {
		text := testkit.Scrape(t, "http://"+metricsAddr+"/metrics")
		rx, _ := testkit.SumMetric(t, text, "shardd_rx_packets_total")
		drops, _ := testkit.SumMetric(t, text, "shardd_kernel_drops_total")
		return rx + drops
	}
	base := accounted()
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte(msg(i))); err != nil {
			t.Fatal(err)
		}
		if (i+1)%step == 0 || i == n-1 {
			want := base + float64(i+1)
			for deadline := time.Now().Add(testkit.WaitTimeout); accounted() < want; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the daemon accounted for %v of %v datagrams within %v", accounted()-base, i+1, testkit.WaitTimeout)
				}
			}
		}
	}
}

// TestSyslogLogger sends with util-linux logger in every mode shardd takes:
// RFC 5424 and RFC 3164, UDP and TCP (LF and octet-counting framing). Every
// message arrives exactly once, with its fields.
func TestSyslogLogger(t *testing.T) {
	logger := requireTool(t, "logger")
	sink := filepath.Join(t.TempDir(), "out.ndjson")
	d, port, metrics := startSyslog(t, sink, "--proto", "udp,tcp")
	p := strconv.Itoa(int(port))
	type sent struct {
		args            []string
		format, proto   string
		app, pid, msgid string
	}
	var cases []sent
	for i := 0; i < 20; i++ {
		cases = append(cases,
			sent{[]string{"-d", "--rfc5424", "--msgid", "M" + strconv.Itoa(i), "--sd-id", "test@32473", "--sd-param", `seq="` + strconv.Itoa(i) + `"`}, "rfc5424", "udp", "t5u", "", "M" + strconv.Itoa(i)},
			sent{[]string{"-d", "--rfc3164", "--id=" + strconv.Itoa(1000+i)}, "rfc3164", "udp", "t3u", strconv.Itoa(1000 + i), ""},
			sent{[]string{"-T", "--rfc5424", "--id=" + strconv.Itoa(2000+i)}, "rfc5424", "tcp", "t5t", strconv.Itoa(2000 + i), ""},
			sent{[]string{"-T", "--rfc3164"}, "rfc3164", "tcp", "t3t", "", ""},
			sent{[]string{"-T", "--octet-count", "--rfc5424"}, "rfc5424", "tcp", "t5o", "", ""},
		)
	}
	want := map[string]sent{}
	for i, c := range cases {
		msg := fmt.Sprintf("logger test %d via %s/%s: \"quoted\" and \\ back", i, c.format, c.proto)
		want[msg] = c
		args := append([]string{"-n", "127.0.0.1", "-P", p, "-t", c.app}, c.args...)
		if out, err := exec.Command(logger, append(args, msg)...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v %s", args, err, out)
		}
	}
	// logger returns once its datagram or connection is out: stop only
	// once everything was written (the assertions below say what is
	// missing if that never happens), not while some is still on its way.
	for deadline := time.Now().Add(testkit.WaitTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if text, err := testkit.Get("http://" + metrics + "/metrics"); err == nil && testkit.MetricSum(text, "shardd_syslog_written_total", "") >= float64(len(want)) {
			break
		}
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	got := map[string]int{}
	for _, r := range testkit.ReadNDJSON(t, sink) {
		msg, _ := r["message"].(string)
		got[msg]++
		c, ok := want[msg]
		if !ok {
			t.Errorf("unexpected record %v", r)
			continue
		}
		host, _ := os.Hostname()
		if r["format"] != c.format || r["proto"] != c.proto || r["app_name"] != c.app || r["hostname"] != host || r["severity"] != 5.0 || r["facility"] != 1.0 {
			t.Errorf("record %v, sent %+v", r, c)
		}
		if pid, _ := r["procid"].(string); pid != c.pid && c.pid != "" {
			t.Errorf("procid %q, want %q", pid, c.pid)
		}
		if c.msgid != "" {
			sd, _ := r["structured_data"].(map[string]any)
			if r["msgid"] != c.msgid || sd["test@32473"] == nil {
				t.Errorf("msgid/structured data: %v", r)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, r["timestamp"].(string)); err != nil {
			t.Errorf("timestamp: %v", err)
		}
	}
	for msg := range want {
		if got[msg] != 1 {
			t.Errorf("%q arrived %d times", msg, got[msg])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct records, want %d", len(got), len(want))
	}
	if !strings.Contains(d.Stderr.String(), fmt.Sprintf(`"received":%d,"written":%d,"dropped":0`, len(want), len(want))) {
		t.Errorf("no clean accounting line:\n%s", d.Stderr)
	}
}

// TestSyslogFromRsyslog: rsyslogd, started with its own configuration,
// takes messages from logger on a loopback port and forwards each to
// shardd twice over UDP (omfwd): as RFC 5424 and in its traditional RFC
// 3164 format. Every message arrives once per format, fields intact.
func TestSyslogFromRsyslog(t *testing.T) {
	rsyslogd := requireTool(t, "rsyslogd")
	logger := requireTool(t, "logger")
	dir := t.TempDir()
	sink := filepath.Join(dir, "out.ndjson")
	d, port, _ := startSyslog(t, sink)
	in := testkit.FreeUDPPort(t)
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global(workDirectory=%q)
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%d" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="udp")
}
`, dir, in, port, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := exec.Command(rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	var rsOut bytes.Buffer
	rs.Stdout, rs.Stderr = &rsOut, &rsOut
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Process.Kill(); _ = rs.Wait() }) // only the rsyslogd this test started
	send := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(logger, append([]string{"-d", "-n", "127.0.0.1", "-P", strconv.Itoa(in)}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("logger: %v %s", err, out)
		}
	}
	// rsyslogd listens once it has started: probe until a probe arrives.
	deadline := time.Now().Add(testkit.WaitTimeout)
	for probed := false; !probed; {
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd forwarded nothing within %v:\n%s", testkit.WaitTimeout, rsOut.String())
		}
		send("--rfc5424", "-t", "probe", "probe")
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(sink)
		probed = bytes.Contains(b, []byte(`"probe"`))
	}
	const n = 50
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			send("--rfc5424", "-t", "rsapp", "--msgid", "ID"+strconv.Itoa(i), "--sd-id", "test@32473", "--sd-param", `seq="`+strconv.Itoa(i)+`"`, "rsyslog test "+strconv.Itoa(i))
		} else {
			send("--rfc3164", "-t", "rsapp", "--id="+strconv.Itoa(5000+i), "rsyslog test "+strconv.Itoa(i))
		}
	}
	// Every message arrives twice (once per omfwd action): wait for them.
	want := 2 * n
	deadline = time.Now().Add(testkit.WaitTimeout)
	var recs []map[string]any
	for {
		recs = recs[:0]
		for _, r := range testkit.ReadNDJSON(t, sink) {
			if r["app_name"] == "rsapp" {
				recs = append(recs, r)
			}
		}
		if len(recs) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = rs.Process.Signal(syscall.SIGTERM)
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	seen := map[string]int{}
	for _, r := range testkit.ReadNDJSON(t, sink) {
		if r["app_name"] != "rsapp" {
			continue
		}
		msg := strings.TrimSpace(r["message"].(string)) // rsyslog puts a space before an RFC 3164 message it re-encodes
		var i int
		if _, err := fmt.Sscanf(msg, "rsyslog test %d", &i); err != nil {
			t.Errorf("record %v", r)
			continue
		}
		seen[r["format"].(string)+" "+msg]++
		if r["format"] == "rfc5424" && i%2 == 0 {
			sd, _ := r["structured_data"].(map[string]any)
			param, _ := sd["test@32473"].(map[string]any)
			if r["msgid"] != "ID"+strconv.Itoa(i) || param["seq"] != strconv.Itoa(i) {
				t.Errorf("msgid/structured data lost: %v", r)
			}
		}
		if i%2 == 1 && r["format"] == "rfc5424" && r["procid"] != strconv.Itoa(5000+i) {
			t.Errorf("procid lost: %v", r)
		}
	}
	for i := 0; i < n; i++ {
		for _, f := range []string{"rfc5424", "rfc3164"} {
			if k := f + " rsyslog test " + strconv.Itoa(i); seen[k] != 1 {
				t.Errorf("%q arrived %d times", k, seen[k])
			}
		}
	}
}

// sendBefore sends 100 records ("before N") to the syslog daemon on port
// and waits until it has written them: the connection is the test's until
// it ends.
func sendBefore(t *testing.T, port uint16, metrics string) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 0; i < 100; i++ {
		fmt.Fprintf(c, "<13>1 - h app - - - before %d", i)
	}
	waitSyslogMetric(t, metrics, "shardd_syslog_written_total", func(v float64) bool { return v == 100 })
	return c
}

// TestSyslogReopenOnUSR1: logrotate's rename, then SIGUSR1: the records
// before go to the renamed file, the ones after to a new file at the path.
func TestSyslogReopenOnUSR1(t *testing.T) {
	sink := filepath.Join(t.TempDir(), "out.ndjson")
	d, port, metrics := startSyslog(t, sink)
	c := sendBefore(t, port, metrics)
	if err := os.Rename(sink, sink+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	d.WaitLine(t, "reopened")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(c, "<13>1 - h app - - - after %d", i)
	}
	// A datagram still on its way when the stop fences the socket would be
	// a kernel drop: stop once all 200 were written.
	waitSyslogMetric(t, metrics, "shardd_syslog_written_total", func(v float64) bool { return v == 200 })
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for file, prefix := range map[string]string{sink + ".1": "before ", sink: "after "} {
		recs := testkit.ReadNDJSON(t, file)
		if len(recs) != 100 {
			t.Errorf("%s: %d records, want 100", file, len(recs))
		}
		for _, r := range recs {
			if !strings.HasPrefix(r["message"].(string), prefix) {
				t.Errorf("%s: %v", file, r["message"])
			}
		}
	}
}

// TestSyslogDiskFull: the sink on a small tmpfs that fills up. Writes fail
// with ENOSPC, the error is logged once and counted, the daemon keeps
// accepting; once space is freed every accepted record is written, and the
// file holds only whole lines.
func TestSyslogDiskFull(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	sink := filepath.Join(dir, "out.ndjson")
	d, port, metrics := startSyslog(t, sink)
	// Leave about 64 KiB free.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20-64<<10), 0o644); err != nil && !strings.Contains(err.Error(), "no space") {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 2000 // about 600 KiB of records: far more than fits
	sendPaced(t, c, metrics, n, 100, func(i int) string {
		return fmt.Sprintf("<13>1 - h app - - - record %d %s", i, strings.Repeat("x", 200))
	})
	waitSyslogMetric(t, metrics, "shardd_syslog_messages_total", func(v float64) bool { return v == n })
	text := testkit.Scrape(t, "http://"+metrics+"/metrics")
	if !strings.Contains(text, `shardd_syslog_sink_errors_total{kind="disk_full"}`) || strings.Contains(text, `shardd_syslog_sink_errors_total{kind="disk_full"} 0`) {
		t.Fatalf("no disk_full errors counted:\n%s", text)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitSyslogMetric(t, metrics, "shardd_syslog_written_total", func(v float64) bool { return v == n })
	d.WaitLine(t, "sink recovered; writing again")
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	recs := testkit.ReadNDJSON(t, sink)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r["message"].(string)] = true
	}
	if len(recs) != n || len(seen) != n {
		t.Fatalf("%d records, %d distinct, want %d", len(recs), len(seen), n)
	}
	if k := strings.Count(d.Stderr.String(), `"kind":"disk_full"`); k != 1 {
		t.Fatalf("disk_full logged %d times, want once:\n%s", k, d.Stderr)
	}
}

// TestSyslogOverloadAccounting: the sink is a FIFO the test does not read
// at first, so the writer blocks and the bounded queue fills. Every
// message shardd received is then either written or dropped and counted,
// exactly: received == written + dropped.
func TestSyslogOverloadAccounting(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "sink.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader must exist before shardd can open the FIFO for writing.
	rfd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, port, metrics := startSyslog(t, fifo, "--sink-queue", "1M")
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 20000 // about 8 MiB of records against a 1 MiB queue and a 64 KiB pipe
	sendPaced(t, c, metrics, n, 200, func(i int) string {
		return fmt.Sprintf("<13>1 - h app - - - record %d %s", i, strings.Repeat("y", 100))
	})
	waitSyslogMetric(t, metrics, "shardd_syslog_dropped_total", func(v float64) bool { return v > 0 })
	// Now read everything the sink writes.
	rf := os.NewFile(uintptr(rfd), fifo)
	if err := syscall.SetNonblock(rfd, false); err != nil {
		t.Fatal(err)
	}
	lines := make(chan int)
	go func() {
		sc := bufio.NewScanner(rf)
		k := 0
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				panic(fmt.Sprintf("corrupt line %q", sc.Bytes()))
			}
			k++
		}
		lines <- k
	}()
	waitSyslogMetric(t, metrics, "shardd_syslog_queue_depth", func(v float64) bool { return v == 0 })
	// The figures are the final ones the daemon logs as it stops (the
	// sink's accounting line, the shards' summaries): a scrape taken while
	// the shards still read what the socket holds could catch the counters
	// between a datagram's receipt and its write.
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	var received, written, dropped, rx, queueFull float64
	for _, line := range strings.Split(d.Stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["msg"] {
		case "syslog sink closed":
			received, _ = m["received"].(float64)
			written, _ = m["written"].(float64)
			dropped, _ = m["dropped"].(float64)
			reasons, _ := m["dropped_by_reason"].(map[string]any)
			queueFull, _ = reasons["queue_full"].(float64)
		case "shard summary":
			v, _ := m["rx_packets"].(float64)
			rx += v
		}
	}
	got := <-lines
	t.Logf("sent %d, received %v, written %v, dropped %v (queue_full %v), lines read %d", n, received, written, dropped, queueFull, got)
	if received != rx || received != written+dropped || dropped != queueFull || dropped == 0 || float64(got) != written {
		t.Fatalf("accounting: rx %v received %v written %v dropped %v (queue_full %v), lines read %d", rx, received, written, dropped, queueFull, got)
	}
}

// TestSyslogRemovedSinkNotWritable: shardd runs as nobody; its sink file
// is removed and its directory made read-only, so the file cannot be
// created again (EACCES). Nothing is counted as written into the removed
// file: the queue fills and drops are counted, the rest is dropped at exit
// (shutdown, exit code 1), received = written + dropped with written = the
// records in the file before, and each error kind is logged once, with no
// "sink recovered" in between.
func TestSyslogRemovedSinkNotWritable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("running shardd as another user needs root")
	}
	dir, err := os.MkdirTemp("", "shardd-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sink := filepath.Join(dir, "out.ndjson")
	args := []string{"--handler", "syslog", "--sink", sink, "--shards", "2", "--metrics", "127.0.0.1:0", "--sink-queue", "1M", "--drain-timeout", "100ms", "127.0.0.1:0"}
	d := startDaemonAs(t, &syscall.Credential{Uid: 65534, Gid: 65534}, args...)
	port := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string)).Port()
	metrics := d.WaitLine(t, "serving metrics")["addr"].(string)
	c := sendBefore(t, port, metrics)
	if err := os.Remove(sink); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	const n = 20000 // about 6 MiB of records against a 1 MiB queue
	sendPaced(t, c, metrics, n, 200, func(i int) string {
		return fmt.Sprintf("<13>1 - h app - - - after %d %s", i, strings.Repeat("z", 100))
	})
	waitSyslogMetric(t, metrics, "shardd_syslog_dropped_total", func(v float64) bool { return v > 0 })
	// Wait until the sink noticed the removal, failed to create the file
	// again, and failed once more on a retry (was: a 2.5 s sleep, which a
	// loaded machine could outlast before any check ran).
	var text string
	for deadline := time.Now().Add(testkit.WaitTimeout); ; time.Sleep(20 * time.Millisecond) {
		text = testkit.Scrape(t, "http://"+metrics+"/metrics")
		if testkit.MetricSum(text, "shardd_syslog_sink_errors_total", `kind="removed"`) >= 1 && testkit.MetricSum(text, "shardd_syslog_sink_errors_total", `kind="permission"`) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not report the removal and two failed re-creations within %v:\n%s", testkit.WaitTimeout, text)
		}
	}
	if written, _ := testkit.SumMetric(t, text, "shardd_syslog_written_total"); written != 100 {
		t.Fatalf("written %v while the sink could not be created, want 100", written)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != exitRuntime {
		t.Fatalf("exit %d, want %d (records dropped at shutdown):\n%s", code, exitRuntime, d.Stderr)
	}
	stderr := d.Stderr.String()
	var closed map[string]any
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, `"syslog sink closed"`) {
			_ = json.Unmarshal([]byte(line), &closed)
		}
	}
	received, _ := closed["received"].(float64)
	written, _ := closed["written"].(float64)
	dropped, _ := closed["dropped"].(float64)
	reasons, _ := closed["dropped_by_reason"].(map[string]any)
	if written != 100 || received != written+dropped || received < 100+n/2 || reasons["queue_full"] == 0.0 || reasons["shutdown"] == 0.0 {
		t.Fatalf("accounting %v:\n%s", closed, stderr)
	}
	for _, kind := range []string{"removed", "permission"} {
		if k := strings.Count(stderr, `"kind":"`+kind+`"`); k != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", kind, k, stderr)
		}
	}
	if strings.Contains(stderr, "sink recovered") {
		t.Errorf("recovery logged while the sink never recovered:\n%s", stderr)
	}
	if _, err := os.Stat(sink); err == nil {
		t.Errorf("%s exists: shardd was able to create it", sink)
	}
}

// TestSyslogTCPStreamEnds, with both TCP shapes and nc as the sender: a
// last LF-framed message without its LF is written when the client closes
// (as rsyslog's imtcp does), and a line that starts with digits but is no
// octet count (a message without <PRI>) is written raw as a parse error,
// not taken for a bad count that closes the connection and loses the rest.
func TestSyslogTCPStreamEnds(t *testing.T) {
	nc := requireTool(t, "nc")
	for _, shape := range []string{"loop", "goroutines"} {
		t.Run(shape, func(t *testing.T) {
			sink := filepath.Join(t.TempDir(), "out.ndjson")
			d, port, metrics := startSyslog(t, sink, "--proto", "tcp", "--tcp-shape", shape)
			send := func(stream string) {
				t.Helper()
				cmd := exec.Command(nc, "-q1", "127.0.0.1", strconv.Itoa(int(port)))
				cmd.Stdin = strings.NewReader(stream)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("nc: %v %s", err, out)
				}
			}
			send("<13>Nov 25 12:00:00 h app: first\n<13>Nov 25 12:00:01 h app: last-no-lf")
			send("<13>Nov 25 12:00:02 h app: one\n2026-11-25 12:00:00 plain\n<13>Nov 25 12:00:03 h app: three\n")
			send("\n\n")
			waitSyslogMetric(t, metrics, "shardd_tcp_closed_total", func(v float64) bool { return v == 3 })
			text := testkit.Scrape(t, "http://"+metrics+"/metrics")
			if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, d.Stderr)
			}
			var got []string
			for _, r := range testkit.ReadNDJSON(t, sink) {
				if r["format"] == "invalid" {
					got = append(got, "invalid:"+r["raw"].(string))
					if r["parse_error"] == nil {
						t.Errorf("no parse_error: %v", r)
					}
					continue
				}
				got = append(got, r["message"].(string))
			}
			want := []string{"first", "last-no-lf", "one", "invalid:2026-11-25 12:00:00 plain", "three"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("records %q, want %q", got, want)
			}
			if v := testkit.MetricSum(text, "shardd_tcp_closed_total", `reason="eof"`); v != 3 {
				t.Errorf("%v connections closed at EOF, want 3:\n%s", v, text)
			}
			if v, _ := testkit.SumMetric(t, text, "shardd_tcp_discarded_bytes_total"); v != 2 {
				t.Errorf("discarded %v bytes, want 2 (the empty lines)", v)
			}
		})
	}
}
