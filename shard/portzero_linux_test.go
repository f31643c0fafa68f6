package shard

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/packet"
)

// TestPortZeroNeverJoinsAnotherGroup: with SO_REUSEPORT the kernel's pick
// for port 0 may hand out a port another reuseport group of the same user
// holds, and a group asking for port 0 would join it. The test re-runs
// itself in a network namespace of its own (unshare -n) whose local port
// range is two ports, one of them held by a foreign reuseport socket: each
// of 20 groups must get the other port. Before ownPort, about half did not.
func TestPortZeroNeverJoinsAnotherGroup(t *testing.T) {
	if os.Getenv("SHARDD_PORTZERO_CHILD") == "1" {
		portZeroChild(t)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if os.Geteuid() != 0 || err != nil {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("needs root and unshare (util-linux), and SHARDD_REQUIRE_TOOLS=1: euid %d, %v", os.Geteuid(), err)
		}
		t.Skipf("a network namespace of its own needs root and unshare: euid %d, %v", os.Geteuid(), err)
	}
	cmd := exec.Command(unshare, "--net", os.Args[0], "-test.run", "^TestPortZeroNeverJoinsAnotherGroup$", "-test.v", "-test.count", "1")
	cmd.Env = append(os.Environ(), "SHARDD_PORTZERO_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The child must have run its rounds, not skipped or matched nothing.
	if !strings.Contains(string(out), "portzero: 20 groups") {
		t.Fatalf("the child in its own namespace did not report its rounds:\n%s", out)
	}
	t.Logf("%s", strings.TrimSpace(lastLine(string(out), "portzero:")))
}

func lastLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

func portZeroChild(t *testing.T) {
	const low, high = 40000, 40001
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40001"), 0); err != nil {
		t.Fatal(err)
	}
	// The foreign group: one reuseport socket on the lower port.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		if err != nil {
			return err
		}
		return serr
	}}
	foreign, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:40000")
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	for round := 0; round < 20; round++ {
		g, err := Listen(Config{Addr: "0.0.0.0:0", Shards: 2, NewHandler: func(int) packet.Handler { return packet.Discard{} }})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		port := g.Info().Bound.Port()
		_ = g.Close()
		if port != high {
			t.Fatalf("round %d: the group got port %d (range %d-%d, %d held by a foreign reuseport socket): it joined the foreign group", round, port, low, high, low)
		}
	}
	t.Logf("portzero: 20 groups asked for port 0, none joined the foreign socket's port %d", low)
}
