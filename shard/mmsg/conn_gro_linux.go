package mmsg

import (
	"os"
)

// groState is where a Conn with GRO is in its last receive: the datagrams
// of a coalesced buffer that did not fit the caller's out wait for the next
// ReadBatch.
type groState struct {
	n    int // buffers the last recvmmsg returned
	next int // the buffer being split
	off  int // and the offset of its next datagram
	seg  int // the buffer's datagram size (Split)
	bufs int // buffers received in all (tests: coalescing happened)
}

// EnableGRO turns on UDP generic receive offload (UDP_GRO, Linux 5.0+) for
// the Conn's socket: the kernel may deliver several datagrams of the flow in
// one buffer, which ReadBatch splits again by the segment size it reports,
// so that the caller still gets one slice per datagram. It receives into
// slots buffers of 64 KiB from then on. false when the kernel lacks it (the
// Conn goes on as before).
func (b *Conn) EnableGRO(slots int) bool {
	var err error
	if cerr := b.rc.Control(func(fd uintptr) { err = SetGRO(fd, true) }); cerr != nil || err != nil {
		return false
	}
	b.rx = NewBatch(slots, Options{Control: GROSpace})
	b.rxSlab = make([]byte, slots*GROSlot)
	b.slot = GROSlot
	for i := range slots {
		b.rx.SetBuf(i, b.rxSlab[i*GROSlot:(i+1)*GROSlot])
	}
	b.gro = &groState{}
	return true
}

// GROBuffers is how many buffers the Conn has received with GRO on: fewer
// than the datagrams when the kernel coalesced some. The receiving
// goroutine's own count: read it when that goroutine is done.
func (b *Conn) GROBuffers() int {
	if b.gro == nil {
		return 0
	}
	return b.gro.bufs
}

// readGRO is ReadBatch on a Conn with GRO: it hands out the datagrams of
// the last receive's buffers first, and receives only when none is left.
func (b *Conn) readGRO(out [][]byte) (int, error) {
	g := b.gro
	if g.next >= g.n {
		b.rxCall.n = b.rx.Len()
		if err := b.rc.Read(b.recvFn); err != nil {
			return 0, err
		}
		if b.rxCall.errno != 0 {
			return 0, os.NewSyscallError("recvmmsg", b.rxCall.errno)
		}
		g.n, g.next, g.off = b.rxCall.res, 0, 0
		g.bufs += g.n
	}
	k := 0
	for k < len(out) && g.next < g.n {
		i := g.next
		buf := b.rxSlab[i*b.slot : i*b.slot+min(b.rx.MsgLen(i), b.slot)]
		if g.off == 0 { // a new buffer: its segment size, once
			_, seg := b.rx.RecvControl(i)
			g.seg, _ = Split(len(buf), seg)
		}
		end := min(g.off+g.seg, len(buf))
		out[k] = buf[g.off:end]
		k++
		g.off = end
		if g.off >= len(buf) {
			g.next, g.off = g.next+1, 0
		}
	}
	return k, nil
}
