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
	skfAdCPU    = 36
	skfAdRandom = 56
)

func ldAncillary(k int32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: uint32(skfAdOff + k)}
}

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
func steerProgram(mode string, shards int, cpus []int) ([]unix.SockFilter, error) {
	n := uint32(shards)
	random := []unix.SockFilter{
		ldAncillary(skfAdRandom),
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: n},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	switch mode {
	case SteerRandom:
		return random, nil
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
		return append(prog, random...), nil
	}
	return nil, fmt.Errorf("no steering program for %q", mode)
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

// slotZeroProgram always picks the group's first socket.
func slotZeroProgram() []unix.SockFilter {
	return []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
}
