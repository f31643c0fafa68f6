//go:build unix

package syslog

import (
	"os"
	"syscall"
)

// fileID is what the sink knows of a file: which one it is (device and
// inode), how many names it has (0: removed while open) and its size.
type fileID struct {
	dev, ino, nlink uint64
	size            int64
}

// same reports whether a and b are the same file.
func (a fileID) same(b fileID) bool { return a.dev == b.dev && a.ino == b.ino }

// statFile is fstat(2) on f.
func statFile(f *os.File) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), nlink: uint64(st.Nlink), size: st.Size}, nil
}

// statPath is stat(2) on path.
func statPath(path string) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), nlink: uint64(st.Nlink), size: st.Size}, nil
}

// oNoFollow makes an open fail on a symbolic link.
const oNoFollow = syscall.O_NOFOLLOW
