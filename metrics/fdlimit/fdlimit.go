// Package fdlimit recognizes descriptor exhaustion (EMFILE, ENFILE) and
// says what to do about it, for every part of shardd that logs it.
package fdlimit

import (
	"errors"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// Fix is what to do when the process runs out of descriptors.
const Fix = "raise the descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell) or lower --max-conns"

// Errno is syscall.EMFILE when err comes from the process's descriptor
// limit, syscall.ENFILE when from the system's, and 0 otherwise. Errors
// that kept only the text (a zone parser's, an http.Server's log line) are
// recognized by it: ENFILE's text ("too many open files in system")
// contains EMFILE's, so it is looked for first.
func Errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, syscall.EMFILE):
		return syscall.EMFILE
	case errors.Is(err, syscall.ENFILE):
		return syscall.ENFILE
	}
	switch s := err.Error(); {
	case strings.Contains(s, syscall.ENFILE.Error()):
		return syscall.ENFILE
	case strings.Contains(s, syscall.EMFILE.Error()):
		return syscall.EMFILE
	}
	return 0
}

// Cause names errno (EMFILE or ENFILE) and what it means.
func Cause(errno syscall.Errno) string {
	if errno == syscall.ENFILE {
		return "ENFILE: the system is out of file descriptors (too many open files in system)"
	}
	return "EMFILE: this process is at its descriptor limit (too many open files)"
}

// Fields name the cause, the fix and the process's descriptor limit when
// err is descriptor exhaustion, so that the one line logged for it says
// what to do; nil otherwise.
func Fields(err error) []zap.Field {
	errno := Errno(err)
	if errno == 0 {
		return nil
	}
	fields := []zap.Field{zap.String("cause", Cause(errno)), zap.String("fix", Fix)}
	if limit, ok := limitNOFILE(); ok {
		fields = append(fields, zap.Uint64("limit_nofile", limit))
	}
	return fields
}
