//go:build unix

package secretfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Check refuses the file fi describes if other users may read or write it,
// or if neither this process's user nor root owns it; the error says how
// to fix it.
func Check(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if uid := os.Geteuid(); ok && st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Errorf("owned by uid %d, neither this user (%d) nor root (fix: chown)", st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o006 != 0 {
		return fmt.Errorf("mode %04o lets every user read or write its secrets (fix: chmod 0600 or 0640)", perm)
	}
	return nil
}

func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
