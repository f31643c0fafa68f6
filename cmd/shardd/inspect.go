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
	Flags    []string `json:"flags,omitempty"`    // not-shardd, other-uid, owner-unknown
	Received *float64 `json:"received,omitempty"` // datagrams (UDP) or messages (TCP) the shard counted, with --metrics
}

// runInspect is `shardd inspect [--json] [--watch] ADDR`: every socket on the
// port, UDP and TCP, IPv4 and IPv6, with owners, queues, drops, SO_REUSEPORT
// and reuseport groups.
func runInspect(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("shardd inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the sockets as a JSON array")
	watch := fs.Bool("watch", false, "refresh every --interval with per-second receive-queue and drop rates")
	interval := fs.Duration("interval", time.Second, "refresh period for --watch")
	count := fs.Int("count", 0, "with --watch, stop after this many refreshes (0: until interrupted)")
	metricsURL := fs.String("metrics", "", "shardd's /metrics URL: adds each shard socket's received datagrams (RX, and RX/s with --watch)")
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: shardd inspect [--json] [--watch [--interval 1s]] ADDR\n\nLists every UDP and TCP socket bound to ADDR's port (ADDR: :PORT, IP:PORT or PORT).")
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardd inspect: %v\n", rewriteFlagError(err))
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "shardd inspect: want one ADDR, e.g. shardd inspect :5353")
		return exitUsage
	}
	if *interval <= 0 {
		fmt.Fprintf(stderr, "shardd inspect: --interval %v: must be positive\n", *interval)
		return exitUsage
	}
	addr := pos[0]
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		addr = ":" + addr
	}
	_, ap, err := shard.ParseAddr(addr)
	if err != nil || ap.Port() == 0 {
		fmt.Fprintf(stderr, "shardd inspect: address %q: want :PORT, IP:PORT or PORT with a port from 1 to 65535\n", pos[0])
		return exitUsage
	}
	var host netip.Addr
	if h, _, _ := net.SplitHostPort(addr); h != "" {
		host = ap.Addr()
	}

	prev := map[uint64]sockinfo.Socket{}
	var prevRx map[uint64]float64
	var prevAt time.Time
	for n := 0; ; n++ {
		socks, notes, err := sockinfo.OnPort(ap.Port())
		if err != nil {
			fmt.Fprintf(stderr, "shardd inspect: %v\n", err)
			return exitRuntime
		}
		list := flagSockets(socks, host)
		now := time.Now()
		var rx map[uint64]float64
		if *metricsURL != "" {
			if rx, err = scrapeRxByInode(*metricsURL); err != nil {
				fmt.Fprintf(stderr, "shardd inspect: --metrics %s: %v\n", *metricsURL, err)
				return exitRuntime
			}
			for i := range list {
				if v, ok := rx[list[i].Inode]; ok {
					list[i].Received = &v
				}
			}
		}
		switch {
		case *asJSON:
			_ = json.NewEncoder(stdout).Encode(list)
		default:
			if *watch {
				fmt.Fprint(stdout, "\033[H\033[2J") // clear the terminal
				fmt.Fprintf(stdout, "shardd inspect %s  %s  (every %v)\n\n", pos[0], now.Format("15:04:05"), *interval)
			}
			printSockets(stdout, list, prev, prevRx, now.Sub(prevAt))
		}
		for _, note := range notes {
			fmt.Fprintln(stderr, "note:", note)
		}
		if !*watch || (*count > 0 && n+1 >= *count) {
			return exitOK
		}
		prev, prevRx, prevAt = map[uint64]sockinfo.Socket{}, rx, now
		for _, s := range list {
			prev[s.Inode] = s.Socket
		}
		select {
		case <-stop:
			return exitOK
		case <-time.After(*interval):
		}
	}
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

func printSockets(w io.Writer, list []inspectedSocket, prev map[uint64]sockinfo.Socket, prevRx map[uint64]float64, dt time.Duration) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no sockets on this port")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "PROTO\tLOCAL\tREMOTE\tSTATE\tINODE\tUSER\tPID\tPROCESS\tRECV-Q\tDROPS\tREUSEPORT\tGROUP\tFLAGS"
	withRx := len(list) > 0 && hasReceived(list)
	if withRx {
		header += "\tRX"
	}
	rates := dt > 0 && len(prev) > 0
	if rates {
		header += "\tDROPS/s"
		if withRx {
			header += "\tRX/s"
		}
	}
	fmt.Fprintln(tw, header)
	for _, s := range list {
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
		group := s.Group
		if group == "" {
			group = "-"
		}
		flags := strings.Join(s.Flags, ",")
		if flags == "" {
			flags = "-"
		}
		line := fmt.Sprintf("%s%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s",
			s.Proto, map[string]string{"ipv4": "4", "ipv6": "6"}[s.Family], s.Local, remote, s.State, s.Inode, user, pid, proc, s.RxQueue, s.Drops, rp, group, flags)
		if withRx {
			line += "\t" + optional(s.Received, func(v float64) string { return fmt.Sprintf("%.0f", v) })
		}
		if rates {
			rate := "-"
			if p, ok := prev[s.Inode]; ok {
				rate = fmt.Sprintf("%.0f", float64(s.Drops-min(p.Drops, s.Drops))/dt.Seconds())
			}
			line += "\t" + rate
			if withRx {
				rxRate := "-"
				if was, ok := prevRx[s.Inode]; ok && s.Received != nil {
					rxRate = fmt.Sprintf("%.0f", (*s.Received-was)/dt.Seconds())
				}
				line += "\t" + rxRate
			}
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
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
