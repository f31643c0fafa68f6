package shard

import "math"

// BufferReadBack is what Linux reports (getsockopt SO_RCVBUF or SO_SNDBUF,
// and Info.RcvBuf) for a buffer of ask bytes granted in full: twice the ask,
// the other half being the kernel's bookkeeping, and at most twice
// INT_MAX/2, the kernel's own ceiling. A smaller read-back means a cap
// (net.core.rmem_max, wmem_max) won.
func BufferReadBack(ask int) int64 {
	return 2 * min(int64(ask), math.MaxInt32/2)
}
