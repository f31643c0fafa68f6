package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/shardd/shardd/shard"
)

// rmemMaxPath is the sysctl that caps SO_RCVBUF without CAP_NET_ADMIN.
const rmemMaxPath = "/proc/sys/net/core/rmem_max"

// warnSmallRcvBuf warns when the receive buffer granted is really smaller
// than asked: Linux reports twice the size set (effective), and its own
// ceiling is below twice the largest ask, so only a read-back under
// shard.BufferReadBack(ask) means the sysctl cap won. The warning names the
// cap (rmem_max) and how to raise it.
func warnSmallRcvBuf(log *zap.Logger, in shard.Info) {
	if in.RcvBufAsk <= 0 || in.RcvBuf <= 0 || int64(in.RcvBuf) >= shard.BufferReadBack(in.RcvBufAsk) {
		return
	}
	fields := []zap.Field{zap.String("addr", in.Addr), zap.Int("asked", in.RcvBufAsk), zap.Int("effective", in.RcvBuf)}
	if b, err := os.ReadFile(rmemMaxPath); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			fields = append(fields, zap.Int("rmem_max", n))
		}
	}
	fields = append(fields, zap.String("fix", fmt.Sprintf("raise the cap (sysctl -w net.core.rmem_max=%d) or run with CAP_NET_ADMIN (root), which may exceed it; or ask less with --rcvbuf", in.RcvBufAsk)))
	log.Warn("receive buffer is smaller than asked; bursts may be dropped", fields...)
}
