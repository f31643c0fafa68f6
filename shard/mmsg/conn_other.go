//go:build !linux

package mmsg

import "net"

// Conn falls back to one datagram per call off Linux.
type Conn struct {
	c   *net.UDPConn
	buf []byte
}

// NewConn prepares c; batch is ignored, replies are read into one
// slot-byte buffer.
func NewConn(c *net.UDPConn, batch, slot int) (*Conn, error) {
	return &Conn{c: c, buf: make([]byte, slot)}, nil
}

// WriteBatch writes msgs one by one and returns how many left.
func (b *Conn) WriteBatch(msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if _, err := b.c.Write(m); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

// ReadBatch blocks for one datagram and returns it in out[0]; it is valid
// until the next call.
func (b *Conn) ReadBatch(out [][]byte) (int, error) {
	n, err := b.c.Read(b.buf)
	if err != nil {
		return 0, err
	}
	out[0] = b.buf[:n]
	return 1, nil
}

// EnableGRO is Linux-only: false.
func (b *Conn) EnableGRO(int) bool { return false }

// GROBuffers is 0: no GRO off Linux.
func (b *Conn) GROBuffers() int { return 0 }
