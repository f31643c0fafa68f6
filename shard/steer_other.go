//go:build !linux

package shard

import (
	"errors"
	"syscall"
)

type steerInsn struct{}

func steerProgram(string, int, []int) ([]steerInsn, error) {
	return nil, errors.New("steering needs Linux (SO_ATTACH_REUSEPORT_CBPF)")
}

func attachSteering(syscall.RawConn, []steerInsn) error { return errors.ErrUnsupported }

func slotZeroProgram() []steerInsn { return nil }
