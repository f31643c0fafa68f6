//go:build linux

package main

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/cmd/internal/ports"
	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestGuardSeveralAddrsOnOnePort: 0.0.0.0:P and [::]:P served by one
// daemon with steering and --exclusive are not foreign to each other, at
// Listen (the second ADDR would be refused) and in the guard (it would warn
// of shardd's own sockets); a socket the test binds afterwards is the one
// warning, which also proves the guard ran over both listeners.
func TestGuardSeveralAddrsOnOnePort(t *testing.T) {
	p, err := ports.BelowEphemeral("", true) // free for UDP and TCP on every address
	if err != nil {
		t.Skip(err)
	}
	d := startDaemon(t, "--proto", "udp,tcp", "--shards", "2", "--steer", "random", "--exclusive", "--guard-interval", "100ms",
		fmt.Sprintf("0.0.0.0:%d", p), fmt.Sprintf("[::]:%d", p))
	d.WaitLine(t, "listening")
	d.WaitLine(t, "listening")
	fd := testkit.BindReusePort(t, int(p))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	const warning = "a socket that is not shardd's can take this listener's traffic"
	d.WaitLine(t, warning)
	lines := logLines(d, warning)
	if len(lines) != 1 || int(lines[0]["pid"].(float64)) != os.Getpid() || uint64(lines[0]["inode"].(float64)) != st.Ino {
		t.Fatalf("want one warning, of the test's socket (pid %d, inode %d): %v", os.Getpid(), st.Ino, lines)
	}
	if code, _ := d.Stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr)
	}
}
