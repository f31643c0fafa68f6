package main

// The dot mode: DNS over TLS (RFC 7858) into shardd --tls against NSD
// serving DoT (tls-port), the same zone files and query file as the dns
// mode, on the same CPUs, with one certificate made for the run. Before any
// load, every distinct query is asked of both servers over DoT and the
// answers compared. Then, per repetition and in a rotating server order,
// each server is started fresh and measured three ways: dnsperf -m dot
// (queries/s over long-lived connections), and new connections/s with a
// Go client loop (each connection: a TLS 1.3 handshake, one query, its
// answer, close), once with full handshakes and once resuming a session
// ticket.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// dotConfig holds the dot mode's flags (the query and zone files, and
// dnsperf, are the dns mode's).
type dotConfig struct {
	nsd      string // the NSD binary
	perfArgs string // dnsperf's load shape
	workers  int    // the handshake loop's connections at once
}

func addDoTFlags(fs *flag.FlagSet) *dotConfig {
	c := &dotConfig{}
	fs.StringVar(&c.nsd, "dot-nsd", "nsd", "dot: the NSD binary (serves DoT from tls-port)")
	fs.StringVar(&c.perfArgs, "dot-dnsperf-args", "-c 8 -T 2 -q 500", "dot: dnsperf -m dot's clients, threads and queries outstanding")
	fs.IntVar(&c.workers, "dot-handshake-workers", 4, "dot: connections at once in the new-connections/s loops")
	return c
}

// dotPlanned are the dot mode's runs: the answer check (a start of each
// server), then per repetition and server one run of three loads.
func dotPlanned(reps int, dur time.Duration) []plannedRuns {
	return []plannedRuns{{"dot check", 2, 0}, {"dot", 2 * reps, 3 * dur}}
}

// dotSample is one server's measurements in one repetition.
type dotSample struct {
	Server      string  `json:"server"`
	Rep         int     `json:"rep"`
	QPS         float64 `json:"qps"` // dnsperf -m dot, completed queries/s
	Lost        uint64  `json:"lost"`
	Latency     float64 `json:"avg_latency_s"`
	FullPerS    float64 `json:"full_handshakes_per_s"`    // new connections/s, full handshakes
	ResumedPerS float64 `json:"resumed_handshakes_per_s"` // new connections/s, offering a ticket
	Resumed     float64 `json:"resumed_fraction"`         // of the resuming loop's connections, those that resumed
	Errors      uint64  `json:"handshake_errors"`
	// openssl s_time: handshakes/s alone (no query), new and, over TLS
	// 1.2 (whose tickets come inside the handshake), reusing the session.
	STimeNew     float64 `json:"s_time_new_per_s"`
	STimeReuse   float64 `json:"s_time_reuse_per_s"`
	STimeResumed float64 `json:"s_time_reused_fraction"`
}

// dotResult is what the dot mode adds to results.json.
type dotResult struct {
	Skipped   string      `json:"skipped,omitempty"`
	NSD       string      `json:"nsd"`
	Commands  []string    `json:"commands"`
	Servers   []string    `json:"servers"`
	Samples   []dotSample `json:"samples"`
	LoadStart string      `json:"loadavg_start"`
	LoadEnd   string      `json:"loadavg_end"`
	Reps      int         `json:"reps"`
	Duration  string      `json:"duration"`
	machine   machineInfo
	checkNote string
	workers   int
}

// dotServer is one contender: its command serves DoT on tlsPort (and
// plain DNS on the port withServer gives it).
type dotServer struct {
	dnsServer
	tlsPort *int
}

// dotSetup is what the dot mode runs with.
type dotSetup struct {
	dns      *dnsSetup
	dnsperf  string
	openssl  string // "" without openssl: no s_time figures
	perfArgs []string
	certFile string
	keyFile  string
	pool     *x509.CertPool
	workers  int
	prog     *progress
}

// runDoTMode runs the dot mode; as part of the default set it is skipped,
// with a note, where nsd or dnsperf is missing.
func runDoTMode(fs *flag.FlagSet, c *dotConfig, dc *dnsConfig, shardd string, reps int, dur time.Duration, prog *progress) (*dotResult, error) {
	res, err := runDoT(c, dc, shardd, reps, dur, prog)
	if skipped(fs, err, "dot", dotPlanned(reps, dur), prog) {
		return &dotResult{Skipped: err.Error()}, nil
	}
	return res, err
}

func runDoT(c *dotConfig, dc *dnsConfig, shardd string, reps int, dur time.Duration, prog *progress) (*dotResult, error) {
	nsd, err := exec.LookPath(c.nsd)
	if err != nil {
		return nil, &missingTool{fmt.Errorf("dot mode needs NSD (apt-get install nsd): %w", err)}
	}
	st := &dotSetup{dns: &dnsSetup{}, perfArgs: strings.Fields(c.perfArgs), workers: c.workers, prog: prog}
	if st.dnsperf, err = exec.LookPath(dc.dnsperfEx); err != nil {
		return nil, &missingTool{fmt.Errorf("dot mode needs dnsperf (apt-get install dnsperf): %w", err)}
	}
	if err := st.dns.readInputs(dc); err != nil {
		return nil, err
	}
	st.openssl, _ = exec.LookPath("openssl")
	dir, err := os.MkdirTemp("", "shardbench-dot-cert-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := st.makeCert(dir); err != nil {
		return nil, err
	}
	servers := st.servers(nsd, shardd)
	res := &dotResult{NSD: firstLine(exec.Command(nsd, "-v")), Reps: reps, Duration: dur.String(), machine: readMachine(), workers: c.workers, LoadStart: loadAvg()}
	for _, s := range servers {
		res.Servers = append(res.Servers, s.Name)
	}
	secs := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
	res.Commands = []string{strings.Join(append([]string{"dnsperf", "-m", "dot", "-s", "127.0.0.1", "-p", "{tls-port}", "-d", dc.queries, "-l", secs}, append(st.perfArgs, "-t", "2", "-e")...), " "),
		fmt.Sprintf("shardbench's loop: %d connections at once for %v, each a TLS 1.3 handshake (full, then resuming a ticket), one SOA query and its answer", c.workers, dur),
		fmt.Sprintf("openssl s_time -connect 127.0.0.1:{tls-port} -new -time %s; openssl s_time -connect 127.0.0.1:{tls-port} -reuse -tls1_2 -time %s (one connection at a time, handshakes alone)", secs, secs)}
	if res.checkNote, err = st.checkSameAnswers(servers); err != nil {
		return nil, err
	}
	for rep := 1; rep <= reps; rep++ {
		for i := range servers {
			srv := servers[(i+rep)%len(servers)]
			prog.start("dot", fmt.Sprintf("dot, %s rep %d/%d", srv.Name, rep, reps), 3*dur)
			s, err := st.measure(srv, dur)
			if err != nil {
				prog.end("failed")
				return nil, fmt.Errorf("dot, %s, rep %d: %w", srv.Name, rep, err)
			}
			s.Server, s.Rep = srv.Name, rep
			res.Samples = append(res.Samples, s)
			prog.end("%.0f q/s, %.0f full and %.0f resumed handshakes/s", s.QPS, s.FullPerS, s.ResumedPerS)
		}
	}
	res.LoadEnd = loadAvg()
	return res, nil
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// makeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// dns.test, and its key, into dir: both servers serve it.
func (st *dotSetup) makeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dns.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		DNSNames: []string{"dns.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	st.certFile, st.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(st.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	cert, _ := x509.ParseCertificate(der)
	st.pool = x509.NewCertPool()
	st.pool.AddCert(cert)
	return os.WriteFile(st.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}

// servers are NSD with a server process per CPU (the baseline) and
// shardd with a shard per CPU, each serving DoT on a port of its own.
func (st *dotSetup) servers(nsd, shardd string) []dotServer {
	ncpu := runtime.GOMAXPROCS(0)
	nsdPort, sharddPort := new(int), new(int)
	return []dotServer{
		{dnsServer{Name: fmt.Sprintf("nsd (%d servers, reuseport)", ncpu), Baseline: true, command: func(dir string, port int) ([]string, error) {
			if err := tlsFreePort(port, nsdPort); err != nil {
				return nil, err
			}
			conf, err := st.writeNSDConf(dir, port, *nsdPort, ncpu)
			return []string{nsd, "-d", "-c", conf}, err
		}}, nsdPort},
		{dnsServer{Name: fmt.Sprintf("shardd (%d shards)", ncpu), command: func(_ string, port int) ([]string, error) {
			if err := tlsFreePort(port, sharddPort); err != nil {
				return nil, err
			}
			argv := []string{shardd, "--handler", "dns", "--proto", "udp", "--log-level", "warn", "--shards", strconv.Itoa(ncpu),
				"--tls-cert", st.certFile, "--tls-key", st.keyFile, "--tls", fmt.Sprintf("127.0.0.1:%d", *sharddPort)}
			for _, z := range st.dns.zones {
				argv = append(argv, "--zone", z)
			}
			return append(argv, fmt.Sprintf("127.0.0.1:%d", port)), nil
		}}, sharddPort},
	}
}

// tlsFreePort sets *to a free port other than udpPort.
func tlsFreePort(udpPort int, to *int) error {
	for i := 0; i < 10; i++ {
		p, err := freePort()
		if err != nil {
			return err
		}
		if p != udpPort {
			*to = p
			return nil
		}
	}
	return errors.New("no second free port")
}

// writeNSDConf writes an NSD configuration serving the zones on
// 127.0.0.1@port and DoT on 127.0.0.1@tlsPort with servers processes;
// everything NSD writes stays in dir.
func (st *dotSetup) writeNSDConf(dir string, port, tlsPort, servers int) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n    ip-address: 127.0.0.1@%d\n    ip-address: 127.0.0.1@%d\n    tls-port: %d\n", port, tlsPort, tlsPort)
	fmt.Fprintf(&b, "    tls-service-key: %q\n    tls-service-pem: %q\n    server-count: %d\n    reuseport: yes\n    tcp-count: 1000\n    minimal-responses: yes\n", st.keyFile, st.certFile, servers)
	fmt.Fprintf(&b, "    username: \"\"\n    chroot: \"\"\n    zonesdir: %q\n    pidfile: %q\n    database: \"\"\n", dir, filepath.Join(dir, "nsd.pid"))
	fmt.Fprintf(&b, "    zonelistfile: %q\n    xfrdfile: %q\n    verbosity: 0\n", filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"))
	b.WriteString("remote-control:\n    control-enable: no\n")
	for i, z := range st.dns.zones {
		fmt.Fprintf(&b, "zone:\n    name: %s\n    zonefile: %q\n", st.dns.origins[i], z)
	}
	conf := filepath.Join(dir, "nsd.conf")
	return conf, os.WriteFile(conf, []byte(b.String()), 0o644)
}

// client is the TLS client configuration; cache set: offer its tickets.
func (st *dotSetup) client(cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{RootCAs: st.pool, ServerName: "dns.test", NextProtos: []string{"dot"}, MinVersion: tls.VersionTLS13, ClientSessionCache: cache}
}

// checkSameAnswers asks every distinct query of both servers over DoT and
// compares the answers (as the dns mode does over UDP).
func (st *dotSetup) checkSameAnswers(servers []dotServer) (string, error) {
	qs, _ := readQueryFile(st.dns.queries)
	answers := make([][]string, len(servers))
	for i, srv := range servers {
		st.prog.start("dot check", "dot answer check, "+srv.Name, 0)
		err := withServer(srv.dnsServer, func(int) error {
			if err := waitBound("tcp", *srv.tlsPort, 5*time.Second); err != nil {
				return err
			}
			cl := &dns.Client{Net: "tcp-tls", TLSConfig: st.client(nil), Timeout: 5 * time.Second}
			conn, err := cl.Dial(fmt.Sprintf("127.0.0.1:%d", *srv.tlsPort))
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, q := range qs {
				m := new(dns.Msg)
				m.SetQuestion(q.name, q.qtype)
				m.RecursionDesired = false
				m.SetEdns0(4096, false)
				r, _, err := cl.ExchangeWithConn(m, conn)
				if err != nil {
					return fmt.Errorf("%s %s over DoT: %v", q.name, dns.TypeToString[q.qtype], err)
				}
				// NSD's additional section policy is its own (minimal-responses:
				// yes, the smaller replies): the answer sections must match.
				answer, _, _ := strings.Cut(canonical(r), "\nauthority:")
				answers[i] = append(answers[i], answer)
			}
			return nil
		})
		if err != nil {
			st.prog.end("failed")
			return "", fmt.Errorf("DoT answer check, %s: %w", srv.Name, err)
		}
		st.prog.end("%d answers", len(answers[i]))
	}
	for j, q := range qs {
		if answers[1][j] != answers[0][j] {
			return "", fmt.Errorf("%s %s over DoT: %s answers\n%s\n%s answers\n%s", q.name, dns.TypeToString[q.qtype], servers[0].Name, answers[0][j], servers[1].Name, answers[1][j])
		}
	}
	return fmt.Sprintf("all %d distinct queries answered alike over DoT by both servers (rcode, AA, TC, the answer section; NSD runs with minimal-responses: yes, so its authority and additional sections are no larger than shardd's)", len(qs)), nil
}

// measure starts srv and runs the three loads against its DoT port.
func (st *dotSetup) measure(srv dotServer, dur time.Duration) (dotSample, error) {
	var s dotSample
	err := withServer(srv.dnsServer, func(int) error {
		port := *srv.tlsPort
		if err := waitBound("tcp", port, 5*time.Second); err != nil {
			return err
		}
		secs := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
		p, err := runDnsperf(st.dnsperf, port, st.dns.queries, append([]string{"-m", "dot", "-l", secs}, st.perfArgs...), dur)
		if err != nil {
			return err
		}
		s.QPS, s.Lost, s.Latency = p.QPS, p.Lost, p.Latency
		full, err := st.handshakes(port, dur, false)
		if err != nil {
			return err
		}
		resumed, err := st.handshakes(port, dur, true)
		if err != nil {
			return err
		}
		s.FullPerS, s.ResumedPerS, s.Errors = full.perS, resumed.perS, full.errors+resumed.errors
		if resumed.n > 0 {
			s.Resumed = float64(resumed.resumed) / float64(resumed.n)
		}
		if st.openssl == "" {
			return nil
		}
		if s.STimeNew, _, err = sTime(st.openssl, port, secs, "-new"); err != nil {
			return err
		}
		s.STimeReuse, s.STimeResumed, err = sTime(st.openssl, port, secs, "-reuse", "-tls1_2")
		return err
	})
	return s, err
}

var sTimeLine = regexp.MustCompile(`(\d+) connections in (\d+) real seconds`)

// sTime runs openssl s_time against port for secs and returns the
// connections per real second and, with -reuse, the fraction reused (it
// prints "r" for a reused session, "*" for a new one).
func sTime(openssl string, port int, secs string, args ...string) (float64, float64, error) {
	argv := append([]string{"s_time", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-time", secs}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, openssl, argv...).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("openssl %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return parseSTime(out)
}

// parseSTime reads s_time's output: the connections per real second of
// its last pass and the fraction of them marked reused.
func parseSTime(out []byte) (perS, reusedFrac float64, err error) {
	m := sTimeLine.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, 0, fmt.Errorf("openssl s_time printed no \"connections in N real seconds\":\n%s", out)
	}
	last := m[len(m)-1] // with -reuse, the reuse pass
	n, _ := strconv.ParseFloat(string(last[1]), 64)
	t, _ := strconv.ParseFloat(string(last[2]), 64)
	if t == 0 || n == 0 {
		return 0, 0, fmt.Errorf("openssl s_time: %s", last[0])
	}
	reused := 0
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && strings.Trim(line, "*r") == "" { // the progress marks
			reused += strings.Count(line, "r")
		}
	}
	return n / t, float64(reused) / n, nil
}

// loopResult is one handshake loop's count.
type loopResult struct {
	n, resumed, errors uint64
	perS               float64
}

// handshakes runs st.workers connections at once for dur, each a new TLS
// connection to port with one SOA query answered; resume: each worker
// offers the ticket of its last connection.
func (st *dotSetup) handshakes(port int, dur time.Duration, resume bool) (loopResult, error) {
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeSOA)
	wire, _ := q.Pack()
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(wire)))
	frame = append(frame, wire...)
	var n, resumed, errs atomic.Uint64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < st.workers; w++ {
		var cache tls.ClientSessionCache
		if resume {
			cache = tls.NewLRUClientSessionCache(1)
		}
		conf := st.client(cache)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				did, err := oneDoT(port, conf, frame)
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case did:
					resumed.Add(1)
					n.Add(1)
				default:
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r := loopResult{n: n.Load(), resumed: resumed.Load(), errors: errs.Load()}
	r.perS = float64(r.n) / time.Since(start).Seconds()
	if r.n == 0 {
		return r, fmt.Errorf("no DoT connection completed: %v", firstErr.Load())
	}
	return r, nil
}

// oneDoT makes one DoT connection: the handshake, frame sent, one framed
// answer read (which also takes in a TLS 1.3 ticket), close.
func oneDoT(port int, conf *tls.Config, frame []byte) (resumed bool, err error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: conf}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return false, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return false, err
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(l[:]))); err != nil {
		return false, err
	}
	return c.(*tls.Conn).ConnectionState().DidResume, nil
}

// cell is the medians of one server's samples.
// dotCell is the medians of one server's samples.
type dotCell struct {
	qps, full, resumed, frac, sNew, sReuse, sFrac float64
	lost                                          uint64
}

func (r *dotResult) cell(server string) dotCell {
	var c dotCell
	var q, f, rs, fr, sn, sr, sf []float64
	var l []uint64
	for _, s := range r.Samples {
		if s.Server == server {
			q, f, rs, fr, l = append(q, s.QPS), append(f, s.FullPerS), append(rs, s.ResumedPerS), append(fr, s.Resumed), append(l, s.Lost)
			sn, sr, sf = append(sn, s.STimeNew), append(sr, s.STimeReuse), append(sf, s.STimeResumed)
		}
	}
	if len(q) > 0 {
		c = dotCell{median(q), median(f), median(rs), median(fr), median(sn), median(sr), median(sf), median(l)}
	}
	return c
}

func (r *dotResult) markdown() string {
	var b strings.Builder
	b.WriteString("\n### DNS over TLS: shardd --tls vs NSD\n\n")
	if r.Skipped != "" {
		fmt.Fprintf(&b, "Skipped: %s.\n", r.Skipped)
		return b.String()
	}
	m := r.machine
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s, %s; %s. Both servers serve the same zone files and one certificate (ECDSA P-256) on 127.0.0.1, each started fresh per run on the same CPUs as the clients. %s. %d interleaved repetitions of %s per load; load average %s at the start, %s at the end.\n\nClients:\n\n",
		m.CPU, m.CPUs, m.Kernel, m.Go, m.Date, r.NSD, r.checkNote, r.Reps, r.Duration, r.LoadStart, r.LoadEnd)
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "- `%s`\n", c)
	}
	b.WriteString("\n| server | DoT queries/s (median) | vs nsd | lost (median) | connections/s with one query, full handshake | the same, resuming (resumed) | s_time handshakes/s, new | s_time, reuse TLS 1.2 (reused) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	base := r.cell(r.Servers[0])
	for _, srv := range r.Servers {
		c := r.cell(srv)
		ratio := 0.0
		if base.qps > 0 {
			ratio = c.qps / base.qps
		}
		fmt.Fprintf(&b, "| %s | %s | %.2fx | %d | %s | %s (%.0f%%) | %s | %s (%.0f%%) |\n", srv, human(c.qps), ratio, c.lost, human(c.full), human(c.resumed), 100*c.frac, human(c.sNew), human(c.sReuse), 100*c.sFrac)
	}
	return b.String()
}
