//go:build !unix

package fdlimit

// limitNOFILE reports no limit: systems without RLIMIT_NOFILE (Windows)
// have no per-process descriptor limit to name.
func limitNOFILE() (uint64, bool) { return 0, false }
