package main

import (
	"time"

	"github.com/prometheus/procfs"
)

// processCPU is the user and system CPU time pid has used so far
// (/proc/PID/stat, read with procfs as the metrics and inspect code do),
// Linux only.
func processCPU(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), nil
}
