// Package atomicfile writes the files the commands leave behind (a
// pidfile, an upgrade's outcome, shardbench's results) the one way the
// project writes a file at a path it is given: atomically, so a reader
// never sees half of it, and never through a symbolic link.
//
// A link at the path is refused (Check); the data goes to a temporary file
// with a random name in the path's directory, created with O_EXCL (which
// does not follow a link either), synced, and renamed over the path; the
// rename replaces whatever name is there without following it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Check refuses path if it is a symbolic link or anything but a regular
// file; a path where nothing is yet is fine. Its errors are one line that
// starts with path, so a command can put its flag's name in front.
func Check(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, unwrap(err))
	case fi.Mode()&fs.ModeSymlink != 0:
		to, _ := os.Readlink(path)
		return fmt.Errorf("%s is a symbolic link (to %s), and no file is written through one: remove the link, or give the path of a regular file", path, to)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%v): give the path of a regular file, or of one that does not exist yet", path, fi.Mode().Type())
	}
	return nil
}

// Write replaces path with a file of mode perm holding data, as the
// package doc says; what Check refuses is refused. Its errors start with
// path, as Check's do.
func Write(path string, data []byte, perm os.FileMode) error {
	if err := Check(path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: cannot create a file in its directory: %w (the directory must exist and be writable by this user)", path, unwrap(err))
	}
	tmp := f.Name()
	err = func() error {
		defer f.Close()
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := f.Chmod(perm); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, unwrap(err))
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename made durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// unwrap drops the operation and path a *fs.PathError repeats.
func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
