package shard

import (
	"os"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs in the process's affinity mask, ascending.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, os.NewSyscallError("sched_getaffinity", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// pinThread pins the calling OS thread (not the process) to cpu. The caller
// must hold runtime.LockOSThread and never unlock it, so the pinned thread
// dies with its goroutine rather than going back to the scheduler.
func pinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return os.NewSyscallError("sched_setaffinity", unix.SchedSetaffinity(0, &set))
}
