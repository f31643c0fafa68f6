//go:build !linux

package shard

import "errors"

const defaultTCPShape = TCPShapeGoroutines

// newTCPLoop is Linux's; elsewhere TCP uses a goroutine per connection.
func newTCPLoop(*tcpShard) (tcpRunner, error) {
	return nil, errors.New("the TCP event loop needs Linux (epoll)")
}
