package shard

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Ancillary loads of classic BPF (include/uapi/linux/filter.h).
const (
	skfAdOff    = -0x1000
	skfAdRxhash = 32
	skfAdCPU    = 36
	skfAdRandom = 56
)

func ldAncillary(k int32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: uint32(skfAdOff + k)}
}

// steerProgram builds the classic BPF program a reuseport group runs to
// pick a socket: the value it returns is an index into the group, in the
// order the sockets joined (our shards first, since Listen binds them
// before anyone can join a port 0 group; for a fixed port, sockets that were
// there before us come first and Listen refuses to steer, see attachSteering).
// Every branch returns an index below shards, so a socket that joins later
// (another process of the same user) is never chosen.
//
//   - hash: the packet's flow hash modulo shards (per-flow order kept, like the
//     kernel's own choice, but only over our sockets);
//   - random: a random shard per datagram (one heavy flow spreads evenly);
//   - cpu: the shard pinned to the CPU the datagram arrived on, flow hash for
//     a CPU no shard is pinned to.
func steerProgram(mode string, shards int, cpus []int) ([]unix.SockFilter, error) {
	n := uint32(shards)
	byHash := []unix.SockFilter{
		ldAncillary(skfAdRxhash),
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: n},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	switch mode {
	case SteerHash:
		return byHash, nil
	case SteerRandom:
		return []unix.SockFilter{
			ldAncillary(skfAdRandom),
			{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: n},
			{Code: unix.BPF_RET | unix.BPF_A},
		}, nil
	case SteerCPU:
		if len(cpus) != shards {
			return nil, fmt.Errorf("cpu steering needs every shard pinned")
		}
		prog := []unix.SockFilter{ldAncillary(skfAdCPU)}
		for i, c := range cpus {
			// if A == cpu { return i }
			prog = append(prog,
				unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(c), Jt: 0, Jf: 1},
				unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(i)})
		}
		return append(prog, byHash...), nil
	}
	return nil, fmt.Errorf("unknown steering %q", mode)
}

// attachSteering attaches the program to the group through one of its
// sockets (the program belongs to the group, not to the socket).
func attachSteering(c syscall.RawConn, prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_ATTACH_REUSEPORT_CBPF", serr)
}
