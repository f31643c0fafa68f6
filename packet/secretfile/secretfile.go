// Package secretfile reads files that hold a secret (a password, a key):
// a file that other users may read or write, or that neither the daemon's
// user nor root owns, is refused before it is read, as the TSIG key files
// of packet/dns are (mode 0600 or 0640, owned by the daemon's user or
// root). The mode and owner checked are those of the file opened, so a
// symbolic link (a Kubernetes secret volume, say) is followed, and what it
// points to must pass. ReadPlain and OpenPlain open files that hold no
// secret (a certificate, a zone file) the same way, without that rule:
// every open is non-blocking, so a FIFO planted where a file is read is an
// error at once, never a hang.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Read returns the contents of path, at most max bytes, after Check; a
// larger file, or anything but a regular file, is refused. Its errors are
// one line that starts with path and ends with the fix.
func Read(path string, max int) ([]byte, error) {
	b, err := read(path, max, true)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("%s: larger than %d bytes: give the file that holds the secret only", path, max)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// ErrTooLarge is ReadPlain's error for a file over its limit, for the
// caller to say what the file should hold.
var ErrTooLarge = errors.New("larger than the limit")

// ReadPlain returns the contents of path, at most max bytes, as Read does
// but without the owner and mode rule, for files that hold no secret (a
// certificate, a CA bundle): anything but a regular file is refused
// without blocking on it, and a larger file is ErrTooLarge. Its errors do
// not repeat path.
func ReadPlain(path string, max int) ([]byte, error) {
	return read(path, max, false)
}

// OpenPlain opens path for reading as ReadPlain does, for a file too
// large to read whole (a zone file, streamed): anything but a regular file
// is refused without blocking on it (a FIFO with no writer, a device, a
// directory). Its errors do not repeat path.
func OpenPlain(path string) (*os.File, error) {
	f, _, err := open(path, "the file itself")
	return f, err
}

// open opens path without blocking and returns it with its FileInfo if it
// is a regular file; what is the fix's "give ..." for anything else.
func open(path, what string) (*os.File, fs.FileInfo, error) {
	f, err := openNonblock(path) // a FIFO planted there must not block the start
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%v): give %s", fi.Mode().Type(), what)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func read(path string, max int, secret bool) ([]byte, error) {
	what := "the file itself"
	if secret {
		what = "the file that holds the secret"
	}
	f, fi, err := open(path, what)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if secret {
		if err := Check(fi); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}
