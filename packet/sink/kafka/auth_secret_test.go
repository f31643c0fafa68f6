//go:build unix

package kafka

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSecretPrivate: a password file every user may read, or a link
// to one, is refused with one line naming the file, its mode and the fix;
// a private one (0600, or 0640 as TSIG key files may be) is read.
func TestReadSecretPrivate(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("pw\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	open, link := write("open", 0o644), filepath.Join(dir, "link")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{open, write("other", 0o604), link} {
		if s, err := ReadSecret(path); err == nil || !strings.HasPrefix(err.Error(), path+": mode 06") ||
			!strings.HasSuffix(err.Error(), "lets every user read or write its secrets (fix: chmod 0600 or 0640)") {
			t.Errorf("ReadSecret(%s) = %q, %v; want it refused", path, s, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o640} {
		if s, err := ReadSecret(write(mode.String(), mode)); err != nil || s != "pw" {
			t.Errorf("ReadSecret(mode %v) = %q, %v", mode, s, err)
		}
	}
}
