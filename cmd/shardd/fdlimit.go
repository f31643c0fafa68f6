package main

import (
	"errors"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// fdFix is what to do when the process runs out of descriptors.
const fdFix = "raise the descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell) or lower --max-conns"

// outOfFDs reports whether err comes from the process's descriptor limit
// (EMFILE) or the system's (ENFILE).
func outOfFDs(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return true
	}
	// Some errors (a zone parser's) keep only the text.
	s := err.Error()
	return strings.Contains(s, syscall.EMFILE.Error()) || strings.Contains(s, syscall.ENFILE.Error())
}

// fdFields name the cause and the fix when err is descriptor exhaustion,
// so that the one line logged for it says what to do; nil otherwise.
func fdFields(err error) []zap.Field {
	if !outOfFDs(err) {
		return nil
	}
	cause := "EMFILE: this process is at its descriptor limit (too many open files)"
	if errors.Is(err, syscall.ENFILE) {
		cause = "ENFILE: the system is out of file descriptors (too many open files in system)"
	}
	fields := []zap.Field{zap.String("cause", cause), zap.String("fix", fdFix)}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		fields = append(fields, zap.Uint64("limit_nofile", uint64(rl.Cur)))
	}
	return fields
}
