package file

import (
	"os"
	"syscall"
)

// datasync is fdatasync(2): the data and what is needed to read it back.
func datasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
