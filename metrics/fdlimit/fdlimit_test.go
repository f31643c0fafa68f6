package fdlimit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// TestErrno: wrapped errnos and text-only messages are classified; an
// ENFILE known only by its text is ENFILE, not EMFILE (its text contains
// EMFILE's).
func TestErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{errors.New("connection refused"), 0},
		{fmt.Errorf("reload: %w", os.NewSyscallError("open", syscall.EMFILE)), syscall.EMFILE},
		{fmt.Errorf("reload: %w", os.NewSyscallError("open", syscall.ENFILE)), syscall.ENFILE},
		{errors.New("zone db: open x: too many open files"), syscall.EMFILE},
		{errors.New("zone db: open x: too many open files in system"), syscall.ENFILE},
		{errors.New("http: Accept error: accept tcp 127.0.0.1:9: accept4: too many open files in system; retrying in 5ms"), syscall.ENFILE},
	} {
		if got := Errno(c.err); got != c.want {
			t.Errorf("Errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestFields(t *testing.T) {
	if f := Fields(errors.New("other")); f != nil {
		t.Errorf("Fields of another error: %v", f)
	}
	f := Fields(errors.New("open: too many open files in system"))
	if len(f) < 2 || f[0].Key != "cause" || f[0].String != Cause(syscall.ENFILE) || f[1].Key != "fix" || f[1].String != Fix {
		t.Errorf("Fields of a text ENFILE: %v", f)
	}
}
