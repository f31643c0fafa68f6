package file

import (
	"errors"
	"io/fs"
	"strconv"
	"syscall"
)

// ErrKind is the kind of a failed sink operation; it indexes the sink's
// error counters, and its String is the kind label value.
type ErrKind uint8

// Kinds of sink errors.
const (
	ErrKindDiskFull   ErrKind = iota // ENOSPC, EDQUOT
	ErrKindPermission                // EACCES, EPERM, EROFS
	ErrKindRemoved                   // the file was removed or replaced under the sink
	ErrKindIO                        // anything else
)

// ErrKinds is the number of ErrKind values.
const ErrKinds = int(ErrKindIO) + 1

// String returns the kind label value: disk_full, permission, removed, io.
func (k ErrKind) String() string {
	switch k {
	case ErrKindDiskFull:
		return "disk_full"
	case ErrKindPermission:
		return "permission"
	case ErrKindRemoved:
		return "removed"
	case ErrKindIO:
		return "io"
	}
	return "ErrKind(" + strconv.Itoa(int(k)) + ")"
}

// fix is what the operator can do about an error of kind k.
func (k ErrKind) fix() string {
	switch k {
	case ErrKindDiskFull:
		return "free space on the sink's file system; the sink retries and writes what it queued"
	case ErrKindPermission:
		return "let shardd's user write the sink file and its directory; the sink retries"
	case ErrKindRemoved:
		return "the sink creates the file again at its path"
	}
	return "check the file system; the sink retries"
}

func errKind(err error) ErrKind {
	var re *removedError
	switch {
	case errors.As(err, &re), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ESTALE):
		return ErrKindRemoved
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ErrKindDiskFull
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return ErrKindPermission
	}
	return ErrKindIO
}

type removedError struct{ path string }

func (e *removedError) Error() string {
	return "sink file " + e.path + " was removed or replaced"
}

// ErrHardLink is the error of a sink path whose file has other names. A
// sink file shardd created has one; a hard link planted in a directory that
// another user can write could name any file of the filesystem (where
// fs.protected_hardlinks does not stop it), so shardd does not append to a
// file with more than one name.
var ErrHardLink = errors.New("its file has more than one name (a hard link), and shardd does not append to a file with other names: give the path of a file with one name")

// ErrNotRegular is the error of a sink path that is neither a regular file,
// a FIFO nor a character device.
var ErrNotRegular = errors.New("it is not a regular file, a FIFO or a character device: give the path of a file")

// ErrNoReader is the error of a FIFO sink with no reader: shardd does not
// wait for one (opening it would block).
var ErrNoReader = errors.New("it is a FIFO with no reader, and shardd does not wait for one: start the reader first")

// ErrSymlink is the error of a sink path that is a symbolic link.
var ErrSymlink = errors.New("it is a symbolic link, and shardd does not write through one: give the path of a regular file (the link's target, if that is the file meant)")

// ErrNotOwned is the error of a sink path that holds a file or FIFO of
// another user, who would read every record written there.
var ErrNotOwned = errors.New("it belongs to another user, who could read every record written there: remove it, or chown it to shardd's user")

// refused reports whether err is one of the refusals above, whose text
// already says the fix.
func refused(err error) bool {
	return errors.Is(err, ErrSymlink) || errors.Is(err, ErrHardLink) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrNoReader) || errors.Is(err, ErrNotOwned)
}

// unwrapPath drops the *PathError wrapper (whose text repeats the path).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
