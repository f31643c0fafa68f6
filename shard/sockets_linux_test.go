package shard

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardd/shardd/shard/sockinfo"
)

// joinPort binds a plain SO_REUSEPORT UDP socket of this process (the same
// uid as shardd) on port, as a hijacker of the same user would.
func joinPort(t *testing.T, port uint16) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestSocketsOnPortAndForeign(t *testing.T) {
	g := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 2, UDP: true, TCP: true})
	port := groupPort(g)
	socks, _, err := sockinfo.OnPort(port)
	if err != nil {
		t.Fatal(err)
	}
	var udp, tcp int
	for _, s := range socks {
		if len(s.PIDs) == 0 || s.PIDs[0] != os.Getpid() || s.ReusePort == nil || !*s.ReusePort || s.Group == "" {
			t.Errorf("socket not attributed to us with SO_REUSEPORT and a group: %+v", s)
		}
		if s.Proto == "udp" {
			udp++
		} else {
			tcp++
		}
	}
	if udp != 2 || tcp != 2 {
		t.Fatalf("found %d UDP and %d TCP sockets on the port, want 2 and 2: %+v", udp, tcp, socks)
	}
	if foreign, _, err := g.ForeignSockets(nil); err != nil || len(foreign) != 0 {
		t.Fatalf("our own sockets reported foreign: %v %v", foreign, err)
	}
	fd := joinPort(t, port)
	foreign, _, err := g.ForeignSockets(nil)
	if err != nil || len(foreign) != 1 {
		t.Fatalf("a joined socket was not reported: %+v %v", foreign, err)
	}
	var st unix.Stat_t
	_ = unix.Fstat(fd, &st)
	if f := foreign[0]; f.Inode != st.Ino || f.Proto != "udp" || f.ReusePort == nil || !*f.ReusePort {
		t.Fatalf("foreign socket %+v, want inode %d with SO_REUSEPORT", f, st.Ino)
	}
}

// TestSteeringRefusesAnOccupiedGroup: a socket already on the port would sit
// among the indices a steering program returns, so Listen refuses.
func TestSteeringRefusesAnOccupiedGroup(t *testing.T) {
	probe := startGroup(t, Config{Addr: "127.0.0.1:0", Shards: 1})
	port := groupPort(probe)
	// Another group of this process on the same port is not foreign...
	own := sockinfo.Inodes{}
	own.Add(probe.Inodes()...)
	g2, err := Listen(Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), Shards: 1, Steer: SteerRandom, Own: own})
	if err != nil {
		t.Fatalf("a second group of the same process was refused: %v", err)
	}
	_ = g2.Close()
	// ...a socket nobody in this process bound through shard is.
	joinPort(t, port)
	_, err = Listen(Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), Shards: 2, Exclusive: true})
	var le *ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "already has sockets of other processes") {
		t.Fatalf("Listen with --exclusive on an occupied port: %v", err)
	}
}
