//go:build unix

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardd/shardd/packet/sink"
)

// TestAttackSinkSymlink: a sink path that is a symbolic link is never
// written through: Open refuses it, and so do Reopen and the re-creation
// of a removed sink file; the linked file is untouched and the records go
// on into the file the sink already has.
func TestAttackSinkSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out.ndjson")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Path: path}); !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open through a link: %v; want ErrSymlink naming the path", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	s, _ := openSinkT(t, Config{Path: path, Queue: sink.Config{FlushInterval: time.Millisecond}})
	h := newProducer(s, 0)
	h.put("one")
	waitFor(t, func() bool { _, w, _ := total(s); return w == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); !errors.Is(err, ErrSymlink) {
		t.Fatalf("Reopen through a link: %v; want ErrSymlink", err)
	}
	h.put("two")
	_ = s.Close(context.Background()) // flushes; its error, if any, is the refused link's
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the linked file was written: %q", b)
	}
	if got := readLines(t, path+".1"); len(got) != 2 {
		t.Fatalf("the sink's own file holds %d records, want 2", len(got))
	}
}
