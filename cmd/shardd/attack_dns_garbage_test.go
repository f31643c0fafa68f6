//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"

	"github.com/miekg/dns"
)

// garbageKinds name what each generated message is, for the log.
var garbageKinds = []string{"random", "empty", "bitflip", "truncated", "counts", "comploop", "badlabel", "qr", "oversized", "valid"}

// dnsGarbage makes one message of kind k from r: garbage, a mutated valid
// query, or a valid one. maxPacket is shardd's --max-packet (oversized goes
// beyond it).
func dnsGarbage(r *rand.Rand, k string, maxPacket int) []byte {
	names := []string{"example.com.", "www.example.com.", "ftp.example.com.", "nope.example.com.", "example.org."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSOA, dns.TypeANY, dns.TypeAXFR, 0, 65535}
	valid := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion(names[r.IntN(len(names))], types[r.IntN(len(types))])
		m.Id = uint16(r.Uint32())
		if r.IntN(2) == 0 {
			m.SetEdns0(uint16(512+r.IntN(4096)), r.IntN(2) == 0)
		}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	switch k {
	case "random":
		return random(r.IntN(600))
	case "empty":
		return []byte{}
	case "bitflip":
		b := valid()
		for i := 0; i < 1+r.IntN(8); i++ {
			bit := r.IntN(len(b) * 8)
			b[bit/8] ^= 1 << (bit % 8)
		}
		return b
	case "truncated":
		b := valid()
		return b[:r.IntN(len(b))]
	case "counts":
		b := valid()
		binary.BigEndian.PutUint16(b[4+2*r.IntN(4):], uint16(r.Uint32()))
		return b
	case "comploop":
		// A question name that points at itself (offset 12), or an
		// additional record whose owner points at itself.
		b := valid()
		if r.IntN(2) == 0 {
			b = append(b[:12], 0xC0, 12, 0, 1, 0, 1)
			return b
		}
		binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
		off := len(b)
		return append(b, 0xC0|byte(off>>8), byte(off), 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0)
	case "badlabel":
		b := valid()
		b[12] = byte(64 + r.IntN(128)) // a label longer than 63, or a reserved 0x40/0x80 kind
		return b
	case "qr":
		b := valid()
		b[2] |= 0x80
		return b
	case "oversized":
		return random(maxPacket + 1 + r.IntN(8000))
	case "valid":
		return valid()
	}
	panic("unknown kind " + k)
}

// TestAttackGarbageDNS sends garbage, mutated queries, replies, empty and
// oversized datagrams at the DNS handler over UDP, and the same garbage in
// DNS-over-TCP frames. The daemon must stay up, answer dig correctly after,
// and account for every datagram: sent = received + kernel drops, and
// received = responses (by rcode) + dropped (by reason) + truncated
// (longer than --max-packet) + handler errors.
func TestAttackGarbageDNS(t *testing.T) {
	requireTool(t, "dig") // checked first: the attack ends with dig
	const maxPacket = 1500
	d := startDaemon(t, "--handler", "dns", "--proto", "udp,tcp", "--shards", "2", "--rcvbuf", "4M",
		"--max-packet", fmt.Sprint(maxPacket), "--max-frame", "4096", "--metrics", "127.0.0.1:0", "--zone", "../../testdata/dns/example.com.zone", "127.0.0.1:0")
	bound := netip.MustParseAddrPort(d.WaitLine(t, "listening")["bound"].(string))
	url := "http://" + d.WaitLine(t, "serving metrics")["addr"].(string) + "/metrics"

	r := rand.New(rand.NewPCG(12, 2026))
	const datagrams, chunk = 30000, 250
	perKind := map[string]int{}

	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(bound))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Read the replies so the client's own buffer never matters.
	var replies, replyBytes int
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			replies++
			replyBytes += n
		}
	}()
	udp := func(text, name string) float64 { return testkit.MetricSum(text, name, `proto="udp"`) }
	sent := 0
	for sent < datagrams {
		for j := 0; j < chunk; j++ {
			k := garbageKinds[r.IntN(len(garbageKinds))]
			perKind[k]++
			if _, err := c.Write(dnsGarbage(r, k, maxPacket)); err != nil {
				t.Fatalf("send %s: %v", k, err)
			}
			sent++
		}
		// Pace: wait until shardd saw the chunk (received or dropped).
		deadline := time.Now().Add(60 * time.Second)
		for {
			text := testkit.Scrape(t, url)
			if udp(text, "shardd_rx_packets_total")+udp(text, "shardd_kernel_drops_total") >= float64(sent) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d datagrams sent, shardd saw %v", sent, udp(text, "shardd_rx_packets_total")+udp(text, "shardd_kernel_drops_total"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// The same garbage in DNS-over-TCP frames, pipelined on a few
	// connections that read their replies.
	const conns, framesPerConn = 8, 500
	var wg sync.WaitGroup
	tcpReplies := make([]int, conns)
	var tcpFrames, tcpEmpty int
	for i := 0; i < conns; i++ {
		var stream []byte
		for j := 0; j < framesPerConn; j++ {
			k := garbageKinds[r.IntN(len(garbageKinds))]
			if k == "oversized" {
				k = "random" // a frame over --max-frame closes the connection by design
			}
			m := dnsGarbage(r, k, maxPacket)
			stream = append(append(stream, byte(len(m)>>8), byte(len(m))), m...)
			if len(m) == 0 {
				tcpEmpty++ // a frame that carries no message: counted apart, never handled
			} else {
				tcpFrames++
			}
		}
		conn, err := net.DialTimeout("tcp", bound.String(), testkit.WaitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			go func() {
				_, _ = conn.Write(stream)
				_ = conn.(*net.TCPConn).CloseWrite()
			}()
			tcpReplies[i] += readFrames(conn)
		}()
	}
	wg.Wait()

	// Two connections that break the framing after valid queries: a frame
	// longer than --max-frame (closes the connection), and a partial frame
	// at the end of the stream (its bytes are counted as discarded).
	query := func(name string) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
	}
	brokenReplies := 0
	for _, tail := range [][]byte{
		append([]byte{0x23, 0x28}, make([]byte, 100)...), // 9000 > --max-frame 4096
		append([]byte{0, 50}, make([]byte, 20)...),       // 20 of 50 bytes, then EOF
	} {
		var stream []byte
		for _, n := range []string{"example.com.", "ftp.example.com.", "nope.example.com."} {
			stream = append(stream, query(n)...)
			tcpFrames++
		}
		conn, err := net.DialTimeout("tcp", bound.String(), testkit.WaitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(append(stream, tail...)); err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).CloseWrite()
		brokenReplies += readFrames(conn)
		conn.Close()
	}
	if brokenReplies != 6 {
		t.Errorf("%d replies to the 6 queries before the broken frames, want 6", brokenReplies)
	}

	// Every datagram and frame accounted, once the counters settle.
	var text string
	var rx, drops, truncated, handlerErrs, responses, dropped float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		text = testkit.Scrape(t, url)
		rx, drops = udp(text, "shardd_rx_packets_total"), udp(text, "shardd_kernel_drops_total")
		truncated, handlerErrs = udp(text, "shardd_truncated_total"), udp(text, "shardd_handler_errors_total")
		responses, dropped = udp(text, "shardd_dns_responses_total"), udp(text, "shardd_dns_dropped_total")
		tcpRx := testkit.MetricSum(text, "shardd_rx_packets_total", `proto="tcp"`)
		tcpDone := testkit.MetricSum(text, "shardd_dns_responses_total", `proto="tcp"`) + testkit.MetricSum(text, "shardd_dns_dropped_total", `proto="tcp"`) +
			testkit.MetricSum(text, "shardd_handler_errors_total", `proto="tcp"`)
		// Every connection's close is counted too: a client sees the
		// close before the shard publishes its reason.
		tcpClosed := testkit.MetricSum(text, "shardd_tcp_closed_total", "")
		if rx+drops >= float64(sent) && responses+dropped+truncated+handlerErrs >= rx && tcpRx >= float64(tcpFrames) && tcpDone >= tcpRx &&
			tcpClosed >= conns+2 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var kinds []string
	for k, n := range perKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("attack: %d UDP datagrams sent (%s)", sent, strings.Join(kinds, ", "))
	t.Logf("attack: UDP accounting: received %v + kernel drops %v = %v of %d sent; received = responses %v (%s) + dropped %v (%s) + truncated %v + handler errors %v = %v",
		rx, drops, rx+drops, sent, responses, seriesBy(text, "shardd_dns_responses_total", "rcode", "udp"),
		dropped, seriesBy(text, "shardd_dns_dropped_total", "reason", "udp"), truncated, handlerErrs, responses+dropped+truncated+handlerErrs)
	if rx+drops != float64(sent) {
		t.Errorf("sent %d datagrams, shardd received %v and the kernel dropped %v", sent, rx, drops)
	}
	if got := responses + dropped + truncated + handlerErrs; got != rx {
		t.Errorf("received %v datagrams, but responses + dropped + truncated + handler errors = %v: %v unaccounted", rx, got, rx-got)
	}

	tcp := func(name string) float64 { return testkit.MetricSum(text, name, `proto="tcp"`) }
	totalTCPReplies := brokenReplies
	for _, n := range tcpReplies {
		totalTCPReplies += n
	}
	tcpRx := tcp("shardd_rx_packets_total")
	t.Logf("attack: TCP: %d frames with a message and %d empty ones (empty counted %v) (garbage on %d connections, 6 queries before a broken frame on 2 more): received %v = responses %v (%s) + dropped %v + handler errors %v; the clients read %d replies; connections closed %s; discarded bytes %v",
		tcpFrames, tcpEmpty, tcp("shardd_tcp_empty_frames_total"), conns, tcpRx, tcp("shardd_dns_responses_total"), seriesBy(text, "shardd_dns_responses_total", "rcode", "tcp"),
		tcp("shardd_dns_dropped_total"), tcp("shardd_handler_errors_total"), totalTCPReplies, seriesBy(text, "shardd_tcp_closed_total", "reason", ""),
		tcp("shardd_tcp_discarded_bytes_total"))
	if got := testkit.MetricSum(text, "shardd_tcp_closed_total", `reason="frame_too_large"`); got != 1 {
		t.Errorf("shardd_tcp_closed_total{reason=frame_too_large} = %v, want 1", got)
	}
	// The partial frame's 22 bytes, and what the server had read of the
	// oversized frame when it saw its header: 2 to 102 bytes.
	if got := tcp("shardd_tcp_discarded_bytes_total"); got < 22+2 || got > 22+102 {
		t.Errorf("shardd_tcp_discarded_bytes_total = %v, want 22 (the partial frame) + 2..102 (the oversized frame)", got)
	}
	if tcpRx != float64(tcpFrames) {
		t.Errorf("sent %d frames with a message over TCP, shardd received %v", tcpFrames, tcpRx)
	}
	if got := tcp("shardd_tcp_empty_frames_total"); got != float64(tcpEmpty) {
		t.Errorf("sent %d empty frames over TCP, shardd_tcp_empty_frames_total = %v", tcpEmpty, got)
	}
	if got := tcp("shardd_dns_responses_total") + tcp("shardd_dns_dropped_total") + tcp("shardd_handler_errors_total"); got != tcpRx {
		t.Errorf("TCP: received %v frames, responses + dropped + handler errors = %v", tcpRx, got)
	}
	if float64(totalTCPReplies) != tcp("shardd_dns_responses_total") {
		t.Errorf("TCP: shardd counted %v responses, the clients read %d", tcp("shardd_dns_responses_total"), totalTCPReplies)
	}

	// The handler is still up and right.
	rep := dig(t, "dig", bound, "www.example.com", "A")
	if rep.status != "NOERROR" || !rep.has(rep.answer, "web-1.hosts.example.com. 3600 IN A 192.0.2.80") {
		t.Fatalf("dig after the attack: status %s, answer %v\n%s", rep.status, rep.answer, rep.out)
	}
	repTCP := dig(t, "dig", bound, "+tcp", "ftp.example.com", "A")
	if repTCP.status != "NOERROR" || !repTCP.has(repTCP.answer, "192.0.2.21") {
		t.Fatalf("dig +tcp after the attack: status %s, answer %v\n%s", repTCP.status, repTCP.answer, repTCP.out)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
	c.Close()
	<-readDone
	t.Logf("attack: the UDP client read %d replies (%d bytes)", replies, replyBytes)
}

// readFrames reads TCP-framed DNS messages from conn (for up to 60 s)
// until it ends or breaks, and returns how many whole ones came.
func readFrames(conn net.Conn) int {
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var hdr [2]byte
	n := 0
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return n
		}
		if _, err := io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint16(hdr[:]))); err != nil {
			return n
		}
		n++
	}
}

// seriesBy lists the series of name by one label ("rcode NOERROR 12, ..."),
// keeping lines that contain proto="proto" when proto is set.
func seriesBy(text, name, label, proto string) string {
	sums := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") || (proto != "" && !strings.Contains(line, `proto="`+proto+`"`)) {
			continue
		}
		i := strings.Index(line, label+`="`)
		if i < 0 {
			continue
		}
		v := line[i+len(label)+2:]
		v = v[:strings.IndexByte(v, '"')]
		var f float64
		_, _ = fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &f)
		sums[v] += f
	}
	var out []string
	for k, v := range sums {
		if v != 0 {
			out = append(out, fmt.Sprintf("%s %v", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
