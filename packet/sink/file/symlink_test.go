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

const victimText = "precious: not shardd's\n"

func plantVictim(t *testing.T, dir string) string {
	t.Helper()
	v := filepath.Join(dir, "victim")
	if err := os.WriteFile(v, []byte(victimText), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

func assertVictim(t *testing.T, v string) {
	t.Helper()
	if b, _ := os.ReadFile(v); string(b) != victimText {
		t.Errorf("the victim file was written: %q", b)
	}
}

// within runs f and fails the test if it has not returned after d: the
// call under test must not block.
func within(t *testing.T, what string, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s still blocked after %v", what, d)
		return nil
	}
}

// openRefused plants something at path, checks that Open refuses it at
// once with want, naming the path, and removes it again.
func openRefused(t *testing.T, path string, plant func() error, want error) {
	t.Helper()
	if err := plant(); err != nil {
		t.Fatal(err)
	}
	err := within(t, "Open", 10*time.Second, func() error {
		s, err := Open(Config{Path: path})
		if err == nil {
			_ = s.Close(context.Background())
		}
		return err
	})
	if !errors.Is(err, want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open: %v; want %v naming the path", err, want)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// rotateOnto opens a sink at path and writes the record "one", then moves
// the file to path+".1" (as logrotate does) and plants something else at
// path.
func rotateOnto(t *testing.T, path string, plant func() error) (*Sink, *producer) {
	t.Helper()
	s, _, h := openWritten(t, Config{Path: path, Queue: sink.Config{FlushInterval: time.Millisecond}}, "one")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := plant(); err != nil {
		t.Fatal(err)
	}
	return s, h
}

// wantRecords checks that the sink's own file holds n records.
func wantRecords(t *testing.T, path string, n int) {
	t.Helper()
	if got := readLines(t, path); len(got) != n {
		t.Fatalf("the sink's own file holds %d records, want %d", len(got), n)
	}
}

// attackLink plants a link to a victim file at the sink path with link:
// Open refuses it with want, and so does Reopen after the sink's file was
// moved away; the victim is untouched and the records go on into the file
// the sink already has.
func attackLink(t *testing.T, link func(oldname, newname string) error, want error) {
	dir := t.TempDir()
	v := plantVictim(t, dir)
	path := filepath.Join(dir, "out.ndjson")
	plant := func() error { return link(v, path) }
	openRefused(t, path, plant, want)
	s, h := rotateOnto(t, path, plant)
	if err := s.Reopen(); !errors.Is(err, want) {
		t.Fatalf("Reopen: %v; want %v", err, want)
	}
	h.put("two")
	_ = s.Close(context.Background()) // flushes; its error, if any, is the refused link's
	assertVictim(t, v)
	wantRecords(t, path+".1", 2)
}

// TestAttackSinkSymlink: a sink path that is a symbolic link is never
// written through: Open refuses it, and so do Reopen and the re-creation
// of a removed sink file; the linked file is untouched and the records go
// on into the file the sink already has.
func TestAttackSinkSymlink(t *testing.T) {
	attackLink(t, os.Symlink, ErrSymlink)
}
