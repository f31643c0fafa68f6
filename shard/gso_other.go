//go:build !linux

package shard

import (
	"errors"

	"github.com/shardd/shardd/metrics"
)

// gsoOn is false: no GSO off Linux.
func gsoOn(batchConn) bool { return false }

// setupGSO: UDP_SEGMENT is Linux-only; GSO on refuses to start elsewhere.
func setupGSO(_ batchConn, mode Offload, _ *metrics.Counts) error {
	if mode == OffloadOn {
		return errors.New("GSO on: UDP_SEGMENT is Linux-only; use GSO auto or off")
	}
	return nil
}
