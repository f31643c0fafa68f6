package shard

import (
	"reflect"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestBPFProgramsMatchTheKernelWords checks the x/net/bpf programs against
// the classic BPF words they replace (include/uapi/linux/filter.h), so the
// assembler's encoding of ancillary loads and jumps is what the kernel runs.
func TestBPFProgramsMatchTheKernelWords(t *testing.T) {
	const adOff = 0xfffff000 // SKF_AD_OFF (-0x1000) as a uint32
	raw := func(code uint16, jt, jf uint8, k uint32) bpf.RawInstruction {
		return bpf.RawInstruction{Op: code, Jt: jt, Jf: jf, K: k}
	}
	random := []bpf.RawInstruction{
		raw(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, adOff+56), // SKF_AD_RANDOM
		raw(unix.BPF_ALU|unix.BPF_MOD|unix.BPF_K, 0, 0, 3),
		raw(unix.BPF_RET|unix.BPF_A, 0, 0, 0),
	}
	got, err := steerProgram(SteerRandom, 3, nil)
	if err != nil || !reflect.DeepEqual(got, random) {
		t.Fatalf("random: %v %v, want %v", got, err, random)
	}
	cpu := append([]bpf.RawInstruction{
		raw(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, adOff+36), // SKF_AD_CPU
		raw(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 1, 4),
		raw(unix.BPF_RET|unix.BPF_K, 0, 0, 0),
		raw(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 1, 7),
		raw(unix.BPF_RET|unix.BPF_K, 0, 0, 1),
	}, random...)
	cpu[len(cpu)-2].K = 2
	got, err = steerProgram(SteerCPU, 2, []int{4, 7})
	if err != nil || !reflect.DeepEqual(got, cpu) {
		t.Fatalf("cpu: %v %v, want %v", got, err, cpu)
	}
	if _, err := steerProgram(SteerCPU, 2, []int{4}); err == nil {
		t.Fatal("cpu steering with a shard unpinned: no error")
	}
	retZero := []bpf.RawInstruction{raw(unix.BPF_RET|unix.BPF_K, 0, 0, 0)}
	if got := slotZeroProgram(); !reflect.DeepEqual(got, retZero) {
		t.Fatalf("slot zero: %v", got)
	}
	if got := dropAllProgram(); !reflect.DeepEqual(got, retZero) {
		t.Fatalf("drop all: %v", got)
	}
}
