//go:build unix

package fdlimit

import "syscall"

// limitNOFILE is the process's soft descriptor limit (RLIMIT_NOFILE).
func limitNOFILE() (uint64, bool) {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
