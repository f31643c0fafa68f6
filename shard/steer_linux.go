package shard

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// steerProgram builds the classic BPF program a reuseport group runs to
// pick a socket: the value it returns is an index into the group, in the
// order the sockets joined (ours first: Listen refuses to steer a port that
// already has other processes' sockets). Every branch returns an index below
// shards, so a socket that joins later (another process of the same user)
// is never chosen.
//
//   - random: a random shard per datagram (one heavy flow spreads evenly);
//   - cpu: the shard pinned to the CPU the packet arrived on; a random shard
//     for a CPU no shard is pinned to.
//
// There is no program for hash: classic BPF cannot compute the kernel's
// flow hash (SKF_AD_RXHASH reads skb->hash, which is 0 on loopback and on
// NICs without hash offload, and would send everything to shard 0).
func steerProgram(mode Steer, shards int, cpus []int) ([]bpf.RawInstruction, error) {
	random := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtRand},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(shards)},
		bpf.RetA{},
	}
	switch mode {
	case SteerRandom:
		return bpf.Assemble(random)
	case SteerCPU:
		if len(cpus) != shards {
			return nil, fmt.Errorf("cpu steering needs every shard pinned")
		}
		prog := []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtCPUID}}
		for i, c := range cpus {
			prog = append(prog,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(c), SkipFalse: 1}, // if A == cpu
				bpf.RetConstant{Val: uint32(i)})                               // { return i }
		}
		return bpf.Assemble(append(prog, random...))
	}
	return nil, fmt.Errorf("no steering program for %v", mode)
}

// slotZeroProgram always picks the group's first socket.
func slotZeroProgram() []bpf.RawInstruction {
	return mustAssemble(bpf.RetConstant{Val: 0})
}

// dropAllProgram accepts no byte of any packet: as a socket filter it drops
// everything.
func dropAllProgram() []bpf.RawInstruction {
	return mustAssemble(bpf.RetConstant{Val: 0})
}

// mustAssemble assembles a fixed program; an error is a bug in it.
func mustAssemble(insns ...bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(insns)
	if err != nil {
		panic("shard: bad built-in BPF program: " + err.Error())
	}
	return raw
}

// attachSteering attaches the program to the group through one of its
// sockets (the program belongs to the group, not to the socket).
func attachSteering(c syscall.RawConn, prog []bpf.RawInstruction) error {
	return attachProgram(c, unix.SO_ATTACH_REUSEPORT_CBPF, "SO_ATTACH_REUSEPORT_CBPF", prog)
}

// attachProgram sets an assembled classic BPF program as socket option opt.
func attachProgram(c syscall.RawConn, opt int, name string, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, opt, &fprog)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt "+name, serr)
}
