//go:build !linux

package shard

import (
	"errors"
	"net"
)

// newMmsgConn is Linux-only; elsewhere shards use stdConn.
func newMmsgConn(*net.UDPConn, []rxMsg, bool) (batchConn, error) {
	return nil, errors.ErrUnsupported
}
