//go:build !unix

package syslog

import "os"

// fileID is what the sink knows of a file. Without Unix inodes a file's
// identity is not known here: a removed or replaced sink file is not
// noticed (reopen with the Reopen method), and every file counts as
// linked.
type fileID struct {
	nlink uint64
	size  int64
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

// oNoFollow: this platform has no O_NOFOLLOW, so a symbolic link at the sink path is followed here.
const oNoFollow = 0
