//go:build !linux && !windows

package shard

import "syscall"

// control sets nothing: SO_REUSEPORT is Linux's here, so only one shard binds.
func control(string, bool) func(network, address string, c syscall.RawConn) error { return nil }

// controlTCP sets nothing either.
var controlTCP func(network, address string, c syscall.RawConn) error
