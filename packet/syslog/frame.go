package syslog

import (
	"bytes"
	"errors"

	"github.com/shardd/shardd/packet"
)

// ErrBadOctetCount closes a TCP connection whose octet-counting frame has
// no valid length.
var ErrBadOctetCount = errors.New("syslog: invalid octet count (want MSG-LEN SP SYSLOG-MSG, RFC 6587 3.4.1)")

// Framing implements RFC 6587 framing on a byte stream, detected per frame:
// a frame that starts with a digit is octet-counted ("MSG-LEN SP MSG"),
// any other is non-transparent, ended by LF (a CR before it is dropped).
// Empty lines between frames are skipped.
type Framing struct{}

// Frame implements packet.Framer.
func (Framing) Frame(buf []byte, maxFrame int) (int, []byte, error) {
	skip := 0
	for skip < len(buf) && (buf[skip] == '\n' || buf[skip] == '\r' || buf[skip] == 0) {
		skip++
	}
	b := buf[skip:]
	if len(b) == 0 {
		if skip > maxFrame {
			return 0, nil, packet.ErrFrameTooLarge // a flood of empty lines
		}
		return 0, nil, nil
	}
	if b[0] >= '1' && b[0] <= '9' {
		n, i := 0, 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			if i >= 9 {
				return 0, nil, ErrBadOctetCount
			}
			n = n*10 + int(b[i]-'0')
		}
		if i == len(b) {
			return 0, nil, nil
		}
		if b[i] != ' ' {
			return 0, nil, ErrBadOctetCount
		}
		if n > maxFrame {
			return 0, nil, packet.ErrFrameTooLarge
		}
		if len(b) < i+1+n {
			return 0, nil, nil
		}
		end := i + 1 + n
		return skip + end, b[i+1 : end : end], nil
	}
	k := bytes.IndexByte(b, '\n')
	if k < 0 {
		if len(b) > maxFrame {
			return 0, nil, packet.ErrFrameTooLarge
		}
		return 0, nil, nil
	}
	msg := b[:k:k]
	if len(msg) > 0 && msg[len(msg)-1] == '\r' {
		msg = msg[: len(msg)-1 : len(msg)-1]
	}
	if len(msg) > maxFrame {
		return 0, nil, packet.ErrFrameTooLarge
	}
	return skip + k + 1, msg, nil
}

// AppendFrame implements packet.Framer with octet counting (the syslog
// handler sends nothing; this is for completeness and tests).
func (Framing) AppendFrame(dst, msg []byte) []byte {
	dst = appendUint(dst, len(msg))
	dst = append(dst, ' ')
	return append(dst, msg...)
}

func appendUint(dst []byte, n int) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

var _ packet.Framer = Framing{}
