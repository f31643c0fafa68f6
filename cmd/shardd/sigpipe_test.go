//go:build linux

package main

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestClosedStdoutIsNotFatal: with --sink - and a reader that went away,
// writes fail with EPIPE, which the sink logs and counts; SIGPIPE must not
// kill the daemon.
func TestClosedStdoutIsNotFatal(t *testing.T) {
	cmd := exec.Command(sharddBin(t), "--log-format", "json", "--handler", "syslog", "--sink", "-", "--shards", "1", "127.0.0.1:0")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill() // the daemon this test started
			<-exited
		}
	})
	out.Close() // the reader goes away
	var port string
	for deadline := time.Now().Add(testkit.WaitTimeout); port == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if i := strings.Index(line, `"bound":"127.0.0.1:`); i >= 0 {
				port = line[i+len(`"bound":"127.0.0.1:`):]
				port = port[:strings.IndexByte(port, '"')]
			}
		}
	}
	if port == "" {
		t.Fatalf("no listening line:\n%s", stderr.String())
	}
	c, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(testkit.WaitTimeout); !strings.Contains(stderr.String(), "broken pipe") && time.Now().Before(deadline); {
		_, _ = c.Write([]byte("<13>1 2026-11-25T10:00:00Z host app - - - into a closed pipe"))
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-exited:
		t.Fatalf("the daemon died (%v):\n%s", cmd.ProcessState, stderr.String())
	default:
	}
	if !strings.Contains(stderr.String(), "broken pipe") {
		t.Fatalf("no EPIPE logged:\n%s", stderr.String())
	}
	if bytes.Count([]byte(stderr.String()), []byte("broken pipe")) != 1 {
		t.Errorf("EPIPE logged more than once:\n%s", stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(testkit.WaitTimeout):
		t.Fatal("no exit after SIGTERM")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		t.Fatalf("killed by %v", ws.Signal())
	}
}
