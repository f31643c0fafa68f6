package sockinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

// fakeProc is a proc file system holding the given net/ tables. procfs tells
// a UDP table by "udp" in its path, so the directory's name has none.
func fakeProc(t *testing.T, tables map[string]string) procfs.FS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proc")
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range tables {
		if err := os.WriteFile(filepath.Join(dir, "net", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseProcNet(t *testing.T) {
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  471: 0100007F:14E9 00000000:0000 07 00000000:00000300 00:00000000 00000000  1000        0 12345 2 0000000000000000 17
  472: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
`
	socks, notes, err := scan(fakeProc(t, map[string]string{"udp": udp}), "udp", 5353)
	if err != nil || len(socks) != 1 {
		t.Fatalf("%+v %v", socks, err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "IPv6 disabled?") {
		t.Errorf("a missing udp6 table: notes %q", notes)
	}
	s := socks[0]
	if s.Local.String() != "127.0.0.1:5353" || s.UID != 1000 || s.Inode != 12345 || s.RxQueue != 0x300 || s.Drops != 17 || s.State != "UNCONN" {
		t.Fatalf("parsed %+v", s)
	}
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:14E9 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 20 4 30 10 -1
`
	socks, _, err = scan(fakeProc(t, map[string]string{"tcp": "h\n", "tcp6": tcp6}), "tcp", 5353)
	if err != nil || len(socks) != 2 {
		t.Fatalf("%+v %v", socks, err)
	}
	if socks[0].Local.String() != "[::1]:5353" || socks[0].State != "LISTEN" || socks[1].Local.String() != "127.0.0.1:5353" || socks[1].State != "ESTABLISHED" || socks[1].Remote.Port() != 0xD431 {
		t.Fatalf("parsed %+v", socks)
	}
	for _, bad := range []string{"h\n 0: 0100007F 00000000:0000 07 0:0 0:0 0 0 0 1\n", "h\n 0: 01007F:14E9 00000000:0000 07 0:0 0:0 0 0 0 1\n"} {
		if _, _, err := scan(fakeProc(t, map[string]string{"udp": bad}), "udp", 0); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestMalformedTablesAreErrors: lines procfs reads without complaint but
// that no kernel writes are errors, not a panic or a wrong port.
func TestMalformedTablesAreErrors(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		// procfs v0.22.0 indexes the drops column without checking it is there.
		{"a 10-column UDP line", " 0: 0100007F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1\n", "/proc/net/udp: malformed line"},
		// procfs parses ports as 64-bit numbers.
		{"a 17-bit port", " 0: 0100007F:114E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0\n", "port beyond 16 bits"},
	} {
		_, _, err := scan(fakeProc(t, map[string]string{"udp": "h\n" + tc.line}), "udp", 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
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
		p := fakeProc(t, map[string]string{"udp": string(b)})
		socks, _, err := scan(p, "udp", 0)
		if err != nil {
			return
		}
		// The port filter keeps exactly the sockets on that port.
		for _, s := range socks {
			port := s.Local.Port()
			if port == 0 {
				continue
			}
			on, _, err := scan(p, "udp", port)
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
	})
}
