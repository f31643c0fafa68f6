//go:build !linux

package shard

import (
	"errors"
	"syscall"

	"golang.org/x/net/bpf"
)

func steerProgram(Steer, int, []int) ([]bpf.RawInstruction, error) {
	return nil, errors.New("steering needs Linux (SO_ATTACH_REUSEPORT_CBPF)")
}

func attachSteering(syscall.RawConn, []bpf.RawInstruction) error { return errors.ErrUnsupported }

func slotZeroProgram() []bpf.RawInstruction { return nil }
