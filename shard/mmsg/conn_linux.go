package mmsg

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conn sends and receives batches on one connected UDP socket through its
// syscall.RawConn, waiting in Go's netpoller when the socket is not ready,
// without allocating per call. One goroutine may send while another
// receives: each direction has its own [Batch] and call state.
type Conn struct {
	rc     syscall.RawConn
	tx, rx *Batch
	rxSlab []byte
	slot   int
	txCall call
	rxCall call
	sendFn func(uintptr) bool // built once: a method value made per call would allocate
	recvFn func(uintptr) bool
	gro    *groState // UDP_GRO on (EnableGRO)
}

// call is one direction's arguments and result.
type call struct {
	n, res int
	errno  syscall.Errno
}

// NewConn prepares batches of up to batch datagrams on c, receiving into
// slot-byte buffers of its own.
func NewConn(c *net.UDPConn, batch, slot int) (*Conn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &Conn{rc: rc, tx: NewBatch(batch, Options{}), rx: NewBatch(batch, Options{}), rxSlab: make([]byte, batch*slot), slot: slot}
	for i := range batch {
		b.rx.SetBuf(i, b.rxSlab[i*slot:(i+1)*slot])
	}
	b.sendFn = b.send
	b.recvFn = b.recv
	return b, nil
}

func (b *Conn) send(fd uintptr) bool {
	r, e := b.tx.Send(fd, 0, b.txCall.n, unix.MSG_DONTWAIT)
	if e == unix.EAGAIN {
		return false // wait until writable
	}
	b.txCall.res, b.txCall.errno = r, e
	return true
}

func (b *Conn) recv(fd uintptr) bool {
	r, e := b.rx.Recv(fd, b.rxCall.n, unix.MSG_DONTWAIT)
	if e == unix.EAGAIN {
		return false // wait until readable
	}
	b.rxCall.res, b.rxCall.errno = r, e
	return true
}

// WriteBatch sends each of msgs (at most the batch size) as one datagram,
// or with UDP_SEGMENT set as one super-datagram each, in one sendmmsg, and
// returns how many the kernel took. A refused send (an ICMP port
// unreachable came back) is an error wrapping syscall.ECONNREFUSED.
func (b *Conn) WriteBatch(msgs [][]byte) (int, error) {
	b.txCall.n = len(msgs)
	for i, m := range msgs {
		b.tx.SetBuf(i, m)
	}
	if err := b.rc.Write(b.sendFn); err != nil {
		return 0, err
	}
	if b.txCall.errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", b.txCall.errno)
	}
	return b.txCall.res, nil
}

// ReadBatch blocks until datagrams arrive and returns up to len(out) of
// them in out; the slices are valid until the next call.
func (b *Conn) ReadBatch(out [][]byte) (int, error) {
	if b.gro != nil {
		return b.readGRO(out)
	}
	b.rxCall.n = min(len(out), b.rx.Len())
	if err := b.rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.rxCall.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", b.rxCall.errno)
	}
	for i := range b.rxCall.res {
		out[i] = b.rxSlab[i*b.slot : i*b.slot+b.rx.MsgLen(i)]
	}
	return b.rxCall.res, nil
}
