package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestWriteReplaces: a new file, then one already there, is replaced
// with the data and the mode asked, and no temporary file stays behind.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for _, data := range []string{"one", "two"} {
		if err := Write(path, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != data || fi.Mode().Perm() != 0o640 {
			t.Fatalf("after Write(%q): %q, %v, mode %v", data, b, err, fi.Mode())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d names in the directory, want only out.json", len(ents))
	}
}

// TestWriteRefusesALink: a symbolic link planted at the path (to a file
// another user cares about, or to nothing yet) is refused with one line
// naming the path and the fix; the target is not written, nor made.
func TestWriteRefusesALink(t *testing.T) {
	dir := t.TempDir()
	victim := testkit.Victim(t, dir)
	path, dangling := filepath.Join(dir, "results.json"), filepath.Join(dir, "dangling")
	for target, planted := range map[string]string{victim: path, filepath.Join(dir, "made"): dangling} {
		if err := os.Symlink(target, planted); err != nil {
			t.Fatal(err)
		}
		err := Write(planted, []byte("{}"), 0o644)
		if err == nil || err.Error() != planted+" is a symbolic link (to "+target+"), and no file is written through one: remove the link, or give the path of a regular file" {
			t.Errorf("Write through a link to %s: %v", target, err)
		}
	}
	testkit.AssertUntouched(t, victim)
	if _, err := os.Lstat(filepath.Join(dir, "made")); err == nil {
		t.Error("the dangling link's target was made")
	}
}

// TestCheck: nothing at the path and a regular file pass; a directory
// does not, and a missing directory is an error from Write.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := Check(filepath.Join(dir, "none")); err != nil {
		t.Errorf("Check(nothing there): %v", err)
	}
	if err := Check(dir); err == nil || !strings.HasPrefix(err.Error(), dir+" is not a regular file") {
		t.Errorf("Check(a directory): %v", err)
	}
	missing := filepath.Join(dir, "no", "f")
	if err := Write(missing, nil, 0o644); err == nil || !strings.HasPrefix(err.Error(), missing+": cannot create a file in its directory: no such file or directory") {
		t.Errorf("Write(in a missing directory): %v", err)
	}
}
