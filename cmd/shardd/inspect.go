package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shardd/shardd/cmd/internal/cli"
	"github.com/shardd/shardd/cmd/internal/promscrape"
	"github.com/shardd/shardd/shard"
	"github.com/shardd/shardd/shard/sockinfo"
)

// inspectedSocket is a socket with the flags inspect adds.
type inspectedSocket struct {
	sockinfo.Socket
	Flags    []string  `json:"flags,omitempty"`    // not-shardd, other-uid, owner-unknown
	Received *float64  `json:"received,omitempty"` // datagrams (UDP) or messages (TCP) the shard counted, with --metrics
	XDP      *xdpEntry `json:"xdp,omitempty"`      // an AF_XDP socket or program (proto "xdp")
}

// inspectOptions is a parsed `shardd inspect` command line.
type inspectOptions struct {
	addr       string // as given
	port       uint16
	host       netip.Addr // unset for a wildcard or a bare port
	asJSON     bool
	watch      bool
	interval   time.Duration
	count      int
	metricsURL string
}

// inspectRefresh is one look at the port: what it printed, and what the
// next --watch refresh computes rates against.
type inspectRefresh struct {
	list  []inspectedSocket
	notes []string
	rx    map[uint64]float64 // by inode, with --metrics
	xdp   []xdpOnPort        // shardd XDP programs redirecting the port
	at    time.Time
}

// runInspect is `shardd inspect [--json] [--watch] ADDR`: every socket on the
// port, UDP and TCP, IPv4 and IPv6, with owners, queues, drops, SO_REUSEPORT
// and reuseport groups.
func runInspect(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	o, code := parseInspectArgs(args, stdout, stderr)
	if o == nil {
		return code
	}
	var prev inspectRefresh
	for n := 0; ; n++ {
		cur, err := o.look()
		if err != nil {
			fmt.Fprintf(stderr, "shardd inspect: %v\n", err)
			return exitRuntime
		}
		o.show(stdout, cur, prev)
		for _, note := range cur.notes {
			fmt.Fprintln(stderr, "note:", note)
		}
		if !o.watch || (o.count > 0 && n+1 >= o.count) {
			return exitOK
		}
		prev = cur
		select {
		case <-stop:
			return exitOK
		case <-time.After(o.interval):
		}
	}
}

// parseInspectArgs parses the command line; nil options mean exit with code
// (after --help, or a usage error already printed).
func parseInspectArgs(args []string, stdout, stderr io.Writer) (*inspectOptions, int) {
	fs := newCommandFlags("inspect")
	o := &inspectOptions{}
	fs.BoolVar(&o.asJSON, "json", false, "print the sockets as a JSON array")
	fs.BoolVar(&o.watch, "watch", false, "refresh every --interval with per-second receive-queue and drop rates")
	fs.DurationVar(&o.interval, "interval", time.Second, "refresh period for --watch")
	fs.IntVar(&o.count, "count", 0, "with --watch, stop after this many refreshes (0: until interrupted)")
	fs.StringVar(&o.metricsURL, "metrics", "", "shardd's /metrics URL: adds each shard socket's received datagrams (RX, and RX/s with --watch)")
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, "inspect", fs)
		return nil, exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardd inspect: %v\n", rewriteFlagError(fs, err))
		return nil, exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "shardd inspect: want one ADDR, e.g. shardd inspect :5353")
		return nil, exitUsage
	}
	if o.interval <= 0 {
		fmt.Fprintf(stderr, "shardd inspect: --interval %v: must be positive\n", o.interval)
		return nil, exitUsage
	}
	if err := o.setAddr(pos[0]); err != nil {
		fmt.Fprintf(stderr, "shardd inspect: %v\n", err)
		return nil, exitUsage
	}
	return o, exitOK
}

// setAddr takes ADDR: :PORT, IP:PORT or a bare PORT.
func (o *inspectOptions) setAddr(given string) error {
	addr := given
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		addr = ":" + addr
	}
	_, ap, err := shard.ParseAddr(addr)
	if err != nil || ap.Port() == 0 {
		return fmt.Errorf("address %q: want :PORT, IP:PORT or PORT with a port from 1 to 65535", given)
	}
	o.addr, o.port = given, ap.Port()
	if h, _, _ := net.SplitHostPort(addr); h != "" {
		o.host = ap.Addr()
	}
	return nil
}

// look lists the port's sockets, flags them, and with --metrics adds what
// each of shardd's received.
func (o *inspectOptions) look() (inspectRefresh, error) {
	socks, notes, err := sockinfo.OnPort(o.port)
	if err != nil {
		return inspectRefresh{}, err
	}
	r := inspectRefresh{list: flagSockets(socks, o.host), notes: notes, xdp: xdpPrograms(o.port), at: time.Now()}
	if o.metricsURL == "" {
		return r, nil
	}
	if r.rx, err = scrapeRxByInode(o.metricsURL); err != nil {
		return inspectRefresh{}, fmt.Errorf("--metrics %s: %w", o.metricsURL, err)
	}
	for i := range r.list {
		if v, ok := r.rx[r.list[i].Inode]; ok {
			r.list[i].Received = &v
		}
	}
	return r, nil
}

// show prints one refresh: JSON, or the table with rates against prev.
func (o *inspectOptions) show(w io.Writer, cur, prev inspectRefresh) {
	if o.asJSON {
		_ = json.NewEncoder(w).Encode(slices.Concat(cur.list, xdpJSON(cur.xdp)))
		return
	}
	if o.watch {
		fmt.Fprint(w, "\033[H\033[2J") // clear the terminal
		fmt.Fprintf(w, "shardd inspect %s  %s  (every %v)\n\n", o.addr, cur.at.Format("15:04:05"), o.interval)
	}
	prevSocks := map[uint64]sockinfo.Socket{}
	for _, s := range prev.list {
		prevSocks[s.Inode] = s.Socket
	}
	printSockets(w, cur.list, prevSocks, prev.rx, cur.at.Sub(prev.at))
	printXDP(w, cur.xdp)
}

// flagSockets keeps the sockets whose local address matches host (all when
// host is unset) and flags those not owned by shardd or by another uid than
// shardd's.
func flagSockets(socks []sockinfo.Socket, host netip.Addr) []inspectedSocket {
	refUID := -1
	for _, s := range socks {
		if s.Comm == "shardd" {
			refUID = s.UID
			break
		}
	}
	var out []inspectedSocket
	for _, s := range socks {
		// A wildcard ADDR shows the whole port: a more specific bind
		// beside it is exactly what one looks for.
		if host.IsValid() && !host.IsUnspecified() && s.Local.Addr() != host && !s.Local.Addr().IsUnspecified() {
			continue
		}
		is := inspectedSocket{Socket: s}
		switch {
		case len(s.PIDs) == 0:
			is.Flags = append(is.Flags, "owner-unknown")
		case s.Comm != "shardd":
			is.Flags = append(is.Flags, "not-shardd")
		}
		if refUID >= 0 && s.UID != refUID {
			is.Flags = append(is.Flags, "other-uid")
		}
		out = append(out, is)
	}
	return out
}

// printSockets prints the table; with prev (the last --watch refresh) it
// adds per-second drops, and RX/s with --metrics.
func printSockets(w io.Writer, list []inspectedSocket, prev map[uint64]sockinfo.Socket, prevRx map[uint64]float64, dt time.Duration) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no sockets on this port")
		return
	}
	t := socketTable{withRx: hasReceived(list), rates: dt > 0 && len(prev) > 0, prev: prev, prevRx: prevRx, dt: dt}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, t.header())
	for _, s := range list {
		fmt.Fprintln(tw, t.row(s))
	}
	_ = tw.Flush()
}

// socketTable is which optional columns the table has, and what the rates
// compare with.
type socketTable struct {
	withRx bool // RX, from --metrics
	rates  bool // DROPS/s (and RX/s), from the second --watch refresh on
	prev   map[uint64]sockinfo.Socket
	prevRx map[uint64]float64
	dt     time.Duration
}

func (t socketTable) header() string {
	h := "PROTO\tLOCAL\tREMOTE\tSTATE\tINODE\tUSER\tPID\tPROCESS\tRECV-Q\tDROPS\tREUSEPORT\tGROUP\tFLAGS"
	if t.withRx {
		h += "\tRX"
	}
	if t.rates {
		h += "\tDROPS/s"
		if t.withRx {
			h += "\tRX/s"
		}
	}
	return h
}

func (t socketTable) row(s inspectedSocket) string {
	line := socketCells(s)
	if t.withRx {
		line += "\t" + optional(s.Received, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	}
	if !t.rates {
		return line
	}
	rate := "-"
	if p, ok := t.prev[s.Inode]; ok {
		rate = fmt.Sprintf("%.0f", float64(s.Drops-min(p.Drops, s.Drops))/t.dt.Seconds())
	}
	line += "\t" + rate
	if t.withRx {
		rxRate := "-"
		if was, ok := t.prevRx[s.Inode]; ok && s.Received != nil {
			rxRate = fmt.Sprintf("%.0f", (*s.Received-was)/t.dt.Seconds())
		}
		line += "\t" + rxRate
	}
	return line
}

// socketCells is the columns every table has, "-" (or "?", "*") for what is
// unknown or unset.
func socketCells(s inspectedSocket) string {
	user := s.User
	if user == "" {
		user = strconv.Itoa(s.UID)
	}
	pid, proc := "-", "-"
	if len(s.PIDs) > 0 {
		pid, proc = strconv.Itoa(s.PIDs[0]), s.Comm
	}
	rp := "?"
	if s.ReusePort != nil {
		rp = map[bool]string{true: "yes", false: "no"}[*s.ReusePort]
	}
	remote := "*"
	if s.Remote.Port() != 0 {
		remote = s.Remote.String()
	}
	return fmt.Sprintf("%s%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s",
		s.Proto, map[string]string{"ipv4": "4", "ipv6": "6"}[s.Family], s.Local, remote, s.State, s.Inode, user, pid, proc,
		s.RxQueue, s.Drops, rp, orDash(s.Group), orDash(strings.Join(s.Flags, ",")))
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func hasReceived(list []inspectedSocket) bool {
	for _, s := range list {
		if s.Received != nil {
			return true
		}
	}
	return false
}

func optional(v *float64, f func(float64) string) string {
	if v == nil {
		return "-"
	}
	return f(*v)
}

// scrapeRxByInode joins shardd_socket_info (inode per shard) with
// shardd_rx_packets_total: what each of shardd's sockets received.
func scrapeRxByInode(url string) (map[uint64]float64, error) {
	fams, err := promscrape.Get(url, promscrape.Timeout)
	if err != nil {
		return nil, err
	}
	rx := promscrape.SumBy(fams, "shardd_rx_packets_total", promscrape.ShardOf)
	out := map[uint64]float64{}
	for _, m := range fams["shardd_socket_info"].GetMetric() {
		if n, err := strconv.ParseUint(promscrape.Label(m, "inode"), 10, 64); err == nil {
			out[n] = rx[promscrape.ShardOf(m)]
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no shardd_socket_info series: is this a shardd /metrics URL?")
	}
	return out, nil
}
