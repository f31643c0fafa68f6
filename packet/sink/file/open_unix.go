//go:build unix

package file

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// fileID is what the sink knows of a file: which one it is (device and
// inode), how many names it has (0: removed while open) and its size.
type fileID struct {
	dev, ino, nlink uint64
	size            int64
	fifo            bool // a FIFO, written without blocking (openFile)
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

// openFile opens path to append, creating it, without following a symbolic
// link and without blocking: O_NONBLOCK makes a FIFO with no reader fail
// with ENXIO rather than wait for one. What it opened is then checked
// (fstat): a regular file must have one name, a FIFO and a character
// device are sinks too, anything else is refused. A regular file or device
// is put back in blocking mode; a FIFO stays non-blocking, so its writes
// wait in Go's poller, where a write deadline ends them (see Sink.write).
func openFile(path string) (*os.File, fileID, error) {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o640)
	if errors.Is(err, syscall.ENXIO) {
		return nil, fileID{}, ErrNoReader
	}
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd)
		return nil, fileID{}, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	id := fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), nlink: uint64(st.Nlink), size: st.Size}
	// A file or FIFO another user made there (a shared directory: /tmp)
	// would give that user every record: refused, as O_NOFOLLOW refuses a
	// planted link. Devices belong to root and are shared by design.
	if kind := st.Mode & syscall.S_IFMT; (kind == syscall.S_IFREG || kind == syscall.S_IFIFO) && int(st.Uid) != os.Geteuid() {
		_ = syscall.Close(fd)
		return nil, fileID{}, ErrNotOwned
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		if st.Nlink > 1 {
			_ = syscall.Close(fd)
			return nil, fileID{}, ErrHardLink
		}
		err = syscall.SetNonblock(fd, false)
	case syscall.S_IFCHR:
		err = syscall.SetNonblock(fd, false)
	case syscall.S_IFIFO:
		id.fifo = true
	default:
		_ = syscall.Close(fd)
		return nil, fileID{}, ErrNotRegular
	}
	if err != nil {
		_ = syscall.Close(fd)
		return nil, fileID{}, &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), id, nil
}
