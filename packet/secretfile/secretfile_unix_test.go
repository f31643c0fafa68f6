//go:build unix

package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadModes: a file other users may read or write is refused, one
// line naming the file, the mode and the fix; 0600 and 0640 are read.
// A symbolic link is judged by the file it points to.
func TestReadModes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o640, true}, {0o400, true}, {0o644, false}, {0o604, false}, {0o602, false}, {0o666, false}} {
		path := filepath.Join(dir, c.mode.String())
		if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		b, err := Read(path, 100)
		if c.ok && (err != nil || string(b) != "s3cret\n") {
			t.Errorf("mode %04o: Read = %q, %v; want it read", c.mode, b, err)
		}
		want := path + ": mode " + octal(c.mode) + " lets every user read or write its secrets (fix: chmod 0600 or 0640)"
		if !c.ok && (err == nil || err.Error() != want || b != nil) {
			t.Errorf("mode %04o: Read = %q, %v; want the error %q", c.mode, b, err, want)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, os.FileMode(0o644).String()), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(link, 100); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("a link to a mode 0644 file: %v; want it refused", err)
	}
	_ = os.Remove(link)
	if err := os.Symlink(filepath.Join(dir, os.FileMode(0o600).String()), link); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(link, 100); err != nil || string(b) != "s3cret\n" {
		t.Errorf("a link to a mode 0600 file: %q, %v; want it read", b, err)
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestReadRefuses: a FIFO (without blocking on it), a directory, a file
// larger than max and a missing file are one-line errors naming the file.
func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo, big := filepath.Join(dir, "fifo"), filepath.Join(dir, "big")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:                         fifo + ": not a regular file",
		dir:                          dir + ": not a regular file",
		big:                          big + ": larger than 100 bytes",
		filepath.Join(dir, "absent"): filepath.Join(dir, "absent") + ": no such file or directory",
	} {
		if _, err := Read(path, 100); err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Read(%s): %v; want %q...", path, err, want)
		}
	}
}

// TestReadOwner: a file owned by another user (not root) is refused even
// with mode 0600: that user can change or read it. Needs root to hand the
// file to uid 65534.
func TestReadOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root to chown the file, and SHARDD_REQUIRE_TOOLS=1")
		}
		t.Skip("needs root to chown the file")
	}
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(path, 100); err != nil || string(b) != "s3cret" {
		t.Fatalf("a root-owned 0600 file: %q, %v", b, err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path, 100); err == nil || err.Error() != path+": owned by uid 65534, neither this user (0) nor root (fix: chown)" {
		t.Errorf("a file owned by uid 65534: %v", err)
	}
}

// TestReadPlain: no owner or mode rule (a 0644 certificate is read), but
// a FIFO is refused without blocking and a larger file is ErrTooLarge;
// the errors do not repeat the path.
func TestReadPlain(t *testing.T) {
	dir := t.TempDir()
	pub, fifo, big := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "fifo"), filepath.Join(dir, "big")
	if err := os.WriteFile(pub, []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 101), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPlain(pub, 100); err != nil || string(b) != "public" {
		t.Errorf("ReadPlain(0644 file) = %q, %v", b, err)
	}
	if _, err := ReadPlain(fifo, 100); err == nil || !strings.HasPrefix(err.Error(), "not a regular file") {
		t.Errorf("ReadPlain(FIFO): %v", err)
	}
	if _, err := ReadPlain(big, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadPlain(101 bytes, max 100): %v", err)
	}
}
