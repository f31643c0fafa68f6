package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/shardd/shardd/cmd/internal/tooltest"
	"github.com/shardd/shardd/packet"
)

// boundPort returns a loopback TCP port that is bound but not listening,
// held until the test ends: a connection to it is refused, and no other
// test can take the port meanwhile.
func boundPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// A TCP target that refuses the connection is exit 1 with the target named.
func TestRefusedTCPTargetIsRuntime(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", boundPort(t))
	var stdout, stderr bytes.Buffer
	code := mainCode([]string{"--progress=false", "--proto", "tcp", "--duration", "100ms", "--flows", "2", addr}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "target "+addr+": connection refused") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q: want 1 and one line naming the refused target", code, stderr.String())
	}
}

// A --metrics URL nothing serves is exit 1 with the hint to start shardd
// with --metrics (the README's first example, run against make run's
// server before it served metrics, failed with only "connection refused").
func TestMetricsRefusedHint(t *testing.T) {
	srv := startServer(t, packet.Discard{})
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", boundPort(t))
	var stdout, stderr bytes.Buffer
	code := mainCode([]string{"--progress=false", "--duration", "100ms", "--metrics", url, srv.addr}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "is shardd serving its metrics there? e.g. shardd --metrics 127.0.0.1:9153") {
		t.Fatalf("exit %d, stderr %q: want 1 and the --metrics hint", code, stderr.String())
	}
}

// TestUnreachableTargetIsRuntime runs shardload in a network namespace of
// its own (unshare -n), where even loopback is down, so no packet can leave
// and every target is unreachable: UDP and TCP exit 1, not 2.
func TestUnreachableTargetIsRuntime(t *testing.T) {
	if os.Getenv("SHARDLOAD_NETNS_CHILD") == "1" {
		for _, proto := range []string{"udp", "tcp"} {
			var stdout, stderr bytes.Buffer
			code := mainCode([]string{"--progress=false", "--proto", proto, "--duration", "100ms", "127.0.0.1:5353"}, &stdout, &stderr)
			fmt.Printf("netns child: %s exit %d: %s", proto, code, stderr.String())
		}
		return
	}
	tooltest.RequireRoot(t, "for a network namespace of its own (unshare --net)")
	unshare := tooltest.Require(t, "unshare")
	t.Setenv("SHARDLOAD_NETNS_CHILD", "1") // for the child only: this test returns after it
	out, err := exec.Command(unshare, "--net", "--", os.Args[0], "-test.run=^TestUnreachableTargetIsRuntime$", "-test.count=1").CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{
		"netns child: udp exit 1: shardload: target 127.0.0.1:5353 is unreachable from this host: dial udp 127.0.0.1:5353: connect: network is unreachable\n",
		"netns child: tcp exit 1: shardload: target 127.0.0.1:5353 is unreachable from this host: dial tcp 127.0.0.1:5353: connect: network is unreachable\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the child did not report %q:\n%s", want, out)
		}
	}
}
