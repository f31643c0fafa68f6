//go:build !unix

package file

import "os"

// fileID is what the sink knows of a file. Without Unix inodes a file's
// identity is not known here: a removed or replaced sink file is not
// noticed (reopen with the Reopen method), and every file counts as
// linked.
type fileID struct {
	nlink uint64
	size  int64
	fifo  bool
}

func (a fileID) same(fileID) bool { return true }

func statFile(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	return fileID{nlink: 1, size: fi.Size()}, nil
}

func statPath(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	return fileID{nlink: 1, size: fi.Size()}, nil
}

// openFile opens path to append, creating it. This platform has no
// O_NOFOLLOW: a symbolic link at the sink path is followed here, and the
// file's type and links are not checked.
func openFile(path string) (*os.File, fileID, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fileID{}, err
	}
	id, err := statFile(f)
	if err != nil {
		_ = f.Close()
		return nil, fileID{}, err
	}
	return f, id, nil
}
