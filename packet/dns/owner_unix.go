//go:build unix

package dns

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwnDir refuses a --zone-dir that another user owns or may write
// (that user could plant a link where a zone copy is written).
func checkOwnDir(fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not this user (%d) (fix: chown it to the daemon's user)", st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("mode %04o lets other users write in it (fix: chmod go-w)", fi.Mode().Perm())
	}
	return nil
}

// ownFile reports whether this user owns the file fi describes.
func ownFile(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Geteuid()
}

// openNoFollow opens path for reading, refusing a symbolic link, without
// blocking on a FIFO (the caller checks that it opened a regular file).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// createNoFollow creates a new file at path (never an existing one, never
// through a link), readable by the owner and group.
func createNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o640)
}
