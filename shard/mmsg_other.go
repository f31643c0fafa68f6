//go:build !linux

package shard

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// newMmsgConn is Linux-only; elsewhere shards use stdConn.
func newMmsgConn(syscall.RawConn, net.Addr, []rxMsg, bool) (batchConn, error) {
	return nil, errors.ErrUnsupported
}

// detach is Linux-only: elsewhere the shard reads through the netpoller.
func detach(*net.UDPConn) (*os.File, error) { return nil, errors.ErrUnsupported }

// setGRO: UDP GRO is Linux-only.
func setGRO(_ syscall.RawConn, mode Offload) (on, offWhenIdle bool, err error) {
	if mode == OffloadOn {
		return false, false, errors.ErrUnsupported
	}
	return false, false, nil
}

// groOff: UDP GRO is Linux-only.
func groOff(syscall.RawConn) {}

// groOffWhenIdle: UDP GRO is Linux-only (setGRO never asks for it).
func (s *shard) groOffWhenIdle(batchConn) {}
