//go:build unix

package file

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAttackSinkPlantedByAnotherUser: a regular file or FIFO another user
// made at the sink path (a shared directory) is refused, so that user
// never reads a record; the file is left untouched. Needs root to hand
// the planted files to another uid.
func TestAttackSinkPlantedByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root to chown the planted files, and SHARDD_REQUIRE_TOOLS=1")
		}
		t.Skip("needs root to chown the planted files")
	}
	dir := t.TempDir()
	plant := map[string]func(string) error{
		"file": func(p string) error { return os.WriteFile(p, nil, 0o666) },
		"fifo": func(p string) error { return syscall.Mkfifo(p, 0o666) },
	}
	for name, make := range plant {
		path := filepath.Join(dir, name)
		if err := make(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if name == "fifo" { // a reader, so that only the owner can refuse it
			r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		s, err := Open(Config{Path: path})
		if err == nil {
			_ = s.Close(t.Context())
			t.Fatalf("%s owned by uid 65534: opened as a sink", name)
		}
		if !errors.Is(err, ErrNotOwned) {
			t.Fatalf("%s owned by uid 65534: %v, want ErrNotOwned", name, err)
		}
		if fi, _ := os.Stat(path); name == "file" && fi.Size() != 0 {
			t.Fatalf("the planted file grew to %d bytes", fi.Size())
		}
		t.Logf("attack: %s planted by uid 65534 refused: %v", name, err)
	}
}
