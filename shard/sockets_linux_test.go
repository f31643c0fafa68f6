package shard

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
	socks, _, err := SocketsOnPort(port)
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
	if foreign, _, err := g.ForeignSockets(); err != nil || len(foreign) != 0 {
		t.Fatalf("our own sockets reported foreign: %v %v", foreign, err)
	}
	fd := joinPort(t, port)
	foreign, _, err := g.ForeignSockets()
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
	g2, err := Listen(Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), Shards: 1, Steer: SteerRandom})
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

func TestParseProcNet(t *testing.T) {
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  471: 0100007F:14E9 00000000:0000 07 00000000:00000300 00:00000000 00000000  1000        0 12345 2 0000000000000000 17
  472: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
`
	socks, err := ParseProcNet([]byte(udp), "udp", 5353)
	if err != nil || len(socks) != 1 {
		t.Fatalf("%+v %v", socks, err)
	}
	s := socks[0]
	if s.Local.String() != "127.0.0.1:5353" || s.UID != 1000 || s.Inode != 12345 || s.RxQueue != 0x300 || s.Drops != 17 || s.State != "UNCONN" {
		t.Fatalf("parsed %+v", s)
	}
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:14E9 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 20 4 30 10 -1
`
	socks, err = ParseProcNet([]byte(tcp6), "tcp", 5353)
	if err != nil || len(socks) != 2 {
		t.Fatalf("%+v %v", socks, err)
	}
	if socks[0].Local.String() != "[::1]:5353" || socks[0].State != "LISTEN" || socks[1].Local.String() != "127.0.0.1:5353" || socks[1].State != "ESTABLISHED" || socks[1].Remote.Port() != 0xD431 {
		t.Fatalf("parsed %+v", socks)
	}
	for _, bad := range []string{"h\n 0: 0100007F 00000000:0000 07 0:0 0:0 0 0 0 1\n", "h\n 0: 01007F:14E9 00000000:0000 07 0:0 0:0 0 0 0 1\n"} {
		if _, err := ParseProcNet([]byte(bad), "udp", 0); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	for _, p := range []string{"/proc/net/udp", "/proc/net/tcp6"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, err := ParseProcNet(b, "udp", 0)
		if err == nil {
			// The port filter keeps exactly the sockets on that port.
			for _, s := range socks {
				port := s.Local.Port()
				if port == 0 {
					continue
				}
				on, err := ParseProcNet(b, "udp", port)
				if err != nil {
					t.Fatalf("port %d: %v (all ports parsed)", port, err)
				}
				found := false
				for _, o := range on {
					if o.Local.Port() != port {
						t.Fatalf("port filter %d kept %v", port, o.Local)
					}
					found = found || (o.Local == s.Local && o.Remote == s.Remote && o.Inode == s.Inode)
				}
				if !found {
					t.Fatalf("port filter %d lost %+v", port, s)
				}
			}
		}
	})
}
