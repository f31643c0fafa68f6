//go:build !linux

package main

import (
	"errors"
	"net"
)

const udpMaxSegments = 1

func enableGSO(*net.UDPConn, int) error { return errors.ErrUnsupported }

func disableGSO(*net.UDPConn) error { return nil }

func gsoRefused(error) bool { return false }

// batchIO falls back to one datagram per call off Linux.
type batchIO struct {
	c   *net.UDPConn
	buf []byte
}

func newBatchIO(c *net.UDPConn, batch, slot int) (*batchIO, error) {
	return &batchIO{c: c, buf: make([]byte, slot)}, nil
}

func (b *batchIO) writeBatch(msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if _, err := b.c.Write(m); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

func (b *batchIO) readBatch(out [][]byte) (int, error) {
	n, err := b.c.Read(b.buf)
	if err != nil {
		return 0, err
	}
	out[0] = b.buf[:n]
	return 1, nil
}
