package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// upgradeResult is the zero-loss proof: a steady shardload stream through a
// series of SIGUSR2 upgrades.
type upgradeResult struct {
	Upgrades    int     `json:"upgrades"`
	Rate        float64 `json:"rate"`
	Sent        uint64  `json:"sent"`
	Received    uint64  `json:"received"`
	KernelDrops uint64  `json:"kernel_drops"`
	Processes   int     `json:"processes"`
}

func (u upgradeResult) markdown() string {
	return fmt.Sprintf("\nUpgrade under load: %d upgrades (SIGUSR2) during a steady shardload stream of %.0f datagrams/s: sent %d, received %d by the %d processes together, kernel drops %d (counted by the daemons), lost %d.\n",
		u.Upgrades, u.Rate, u.Sent, u.Received, u.Processes, u.KernelDrops, u.lost())
}

// lost is what was sent and neither received nor counted as a kernel drop
// by any process of the chain: a busy machine may overflow a socket
// buffer (a counted drop), but nothing may go uncounted.
func (u upgradeResult) lost() uint64 {
	return u.Sent - min(u.Received+u.KernelDrops, u.Sent)
}

// lockedBuf collects a process tree's stderr.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// upgradeLoad is how long the upgrade mode's stream runs, given --duration.
func upgradeLoad(dur time.Duration) time.Duration { return 3 * dur }

// measureUpgrade runs shardd, a fixed-rate shardload for dur, and n upgrades
// spread over the middle of it; every process's exit summary is summed.
func measureUpgrade(shardd, shardload string, n int, rate float64, dur time.Duration) (upgradeResult, error) {
	res := upgradeResult{Upgrades: n, Rate: rate, Processes: n + 1}
	port, dir, err := portAndDir("shardbench-upgrade-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	ch, err := startChain(shardd, filepath.Join(dir, "pid"), port)
	if err != nil {
		return res, err
	}
	defer ch.killLeft()
	if err := ch.ready(); err != nil {
		return res, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	load := exec.CommandContext(ctx, shardload, "--json", "--progress=false", "--senders", "1", "--gso", "off",
		"--rate", strconv.FormatFloat(rate, 'f', 0, 64), "--duration", dur.String(), fmt.Sprintf("127.0.0.1:%d", port))
	var out bytes.Buffer
	load.Stdout = &out
	if err := load.Start(); err != nil {
		return res, err
	}
	time.Sleep(dur / 10)
	step := dur * 8 / 10 / time.Duration(n)
	for i := 0; i < n; i++ {
		if err := ch.upgrade(i + 1); err != nil {
			return res, err
		}
		time.Sleep(step)
	}
	if err := load.Wait(); err != nil {
		return res, fmt.Errorf("shardload: %v", err)
	}
	var sum struct {
		Sent uint64 `json:"sent"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		return res, err
	}
	res.Sent = sum.Sent
	// No wait for the tail: the stop fences each socket and serves what
	// is queued, and a datagram refused by the fence is a counted drop.
	if err := ch.stop(); err != nil {
		return res, err
	}
	res.Received, res.KernelDrops = ch.udpSummaries()
	return res, nil
}

// chain is a shardd and the processes that succeed it at each upgrade:
// the pidfile names the one serving.
type chain struct {
	port    int
	pidfile string
	logs    lockedBuf     // every process's JSON log lines
	exited  chan struct{} // closed once every process of the chain has exited
}

// startChain starts shardd (discard handler, JSON logs) on port.
func startChain(shardd, pidfile string, port int) (*chain, error) {
	ch := &chain{port: port, pidfile: pidfile, exited: make(chan struct{})}
	cmd := exec.Command(shardd, "--log-format", "json", "--handler", "discard", "--pidfile", pidfile, fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Stderr = &ch.logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(ch.exited) }() // returns once every process of the chain has exited
	return ch, nil
}

// pid is the process the pidfile names now (0 if none yet).
func (ch *chain) pid() int {
	b, _ := os.ReadFile(ch.pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// killLeft, on a failure, kills what is left of the chain: the process the
// pidfile names now (never a pid of ours that exited long ago and may have
// been reused).
func (ch *chain) killLeft() {
	select {
	case <-ch.exited:
	default:
		if p := ch.pid(); p > 0 {
			_ = signalProcess(p, syscall.SIGKILL)
		}
	}
}

// ready waits until the first process has bound its port and written its
// pidfile.
func (ch *chain) ready() error {
	if err := waitBound("udp", ch.port, 60*time.Second); err != nil {
		return err
	}
	for deadline := time.Now().Add(60 * time.Second); ch.pid() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("shardd wrote no pidfile:\n%s", ch.logs.String())
		}
	}
	return nil
}

// upgrade sends SIGUSR2 and waits until the successor has taken over (the
// pidfile names it).
func (ch *chain) upgrade(nth int) error {
	old := ch.pid()
	if err := signalProcess(old, sigUpgrade); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for ch.pid() == old {
		if time.Now().After(deadline) {
			return fmt.Errorf("upgrade %d did not complete:\n%s", nth, ch.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// stop stops the last process with SIGTERM and waits until it has exited.
func (ch *chain) stop() error {
	_ = signalProcess(ch.pid(), syscall.SIGTERM)
	select {
	case <-ch.exited:
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the upgraded daemon did not exit")
	}
}

// udpSummaries sums what every process's UDP shards received and the drops
// they counted, from their exit summaries.
func (ch *chain) udpSummaries() (received, drops uint64) {
	for _, line := range strings.Split(ch.logs.String(), "\n") {
		var m struct {
			Msg   string  `json:"msg"`
			Proto string  `json:"proto"`
			Rx    float64 `json:"rx_packets"`
			Drops float64 `json:"kernel_drops"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "shard summary" && m.Proto == "udp" {
			received += uint64(m.Rx)
			drops += uint64(m.Drops)
		}
	}
	return received, drops
}
