package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes ParseSize takes, in any case: all powers of
// 1024, as socket buffers and memory limits are.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"kib", 10}, {"mib", 20}, {"gib", 30}, {"k", 10}, {"m", 20}, {"g", 30}}

// ParseSize reads a byte count: plain bytes ("4194304") or a whole number
// with a K, M or G suffix, also spelt KiB, MiB, GiB, in any case ("4M",
// "512KiB", "64k"), all powers of 1024. A count above max is refused. The
// error says what is wanted; the caller names the flag and quotes s.
func ParseSize(s string, max int64) (int64, error) {
	num, shift := s, uint(0)
	lower := strings.ToLower(s)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, shift = s[:len(s)-len(u.suffix)], u.shift
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 63)
	if err != nil || v > uint64(max)>>shift {
		return 0, fmt.Errorf("want a byte count such as 4194304, 4M or 512KiB (at most %s)", sizeLimit(max))
	}
	return int64(v << shift), nil
}

// FormatSize writes n as ParseSize reads it, with the largest unit that
// divides it: "4M", "512K", "1000".
func FormatSize(n int64) string {
	for _, u := range []struct {
		unit  string
		shift uint
	}{{"G", 30}, {"M", 20}, {"K", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.unit
		}
	}
	return strconv.FormatInt(n, 10)
}

// sizeLimit says max for an error message: a limit one byte under a unit
// (2^31-1) reads as that unit ("2G").
func sizeLimit(max int64) string {
	if s := FormatSize(max + 1); s != strconv.FormatInt(max+1, 10) {
		return s
	}
	return FormatSize(max)
}
