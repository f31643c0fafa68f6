package xdp

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/shardd/shardd/shard/netnstest"
)

// TestHostNamespaceRefused: on a thread in the host's network namespace a
// test can neither create an AF_XDP socket (left unbound here) nor attach
// a program (to an interface index no host interface has), so no test can
// reach the machine's interfaces by mistake; in a namespace the test
// created both work.
func TestHostNamespaceRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_XDP sockets and programs need root")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("no network namespaces: %v", err)
	}
	if s, err := Open(1, 0, Options{RingSize: 64, NoBind: true}); !errors.Is(err, ErrHostNamespace) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open in the host's namespace: %v, want %v", err, ErrHostNamespace)
	}
	prog, err := NewProgram(1)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Attach(1 << 30); !errors.Is(err, ErrHostNamespace) {
		t.Fatalf("Attach in the host's namespace: %v, want %v", err, ErrHostNamespace)
	}
	p := netnstest.NewPair(t, 1)
	p.B.Run(t, func() {
		var s *Socket
		if s, err = Open(p.IfindexB(), 0, Options{RingSize: 64, NoBind: true}); err == nil {
			_ = s.Close()
			err = checkNamespace()
		}
	})
	if err != nil {
		t.Fatalf("in the test's namespace: %v", err)
	}
}
