//go:build !linux

package shard

import "errors"

func allowedCPUs() ([]int, error) {
	return nil, errors.New("CPU pinning is only supported on Linux")
}

func pinThread(int) error { return errors.ErrUnsupported }
