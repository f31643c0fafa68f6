package packet

import "errors"

// Framer is implemented by handlers whose messages need framing on a byte
// stream (TCP). Handlers without it get the raw stream: whatever one read
// returns is one message, and replies are written as they are.
type Framer interface {
	// Frame looks for one complete frame at the start of buf. It returns
	// how many bytes the frame takes and the message inside it (a sub-slice
	// of buf), or advance 0 when more bytes are needed. A frame whose
	// length would exceed maxFrame returns ErrFrameTooLarge; other errors
	// mean the stream cannot be framed. Either closes the connection.
	Frame(buf []byte, maxFrame int) (advance int, msg []byte, err error)
	// AppendFrame appends msg framed for the stream to dst.
	AppendFrame(dst, msg []byte) []byte
}

// FinalFramer is an optional extension of Framer for protocols whose last
// message on a stream may end with the stream instead of its delimiter
// (syslog's LF framing: rsyslog and others take a last line without LF).
// When the client has finished sending (EOF), the TCP paths call
// FinalFrame with the bytes left after the last complete frame; it returns
// the message in them (a sub-slice of rest) and true, or false if they are
// no message (an incomplete length-prefixed frame), in which case they are
// discarded and counted as before. rest never exceeds the frame limit:
// Frame has refused longer data already.
type FinalFramer interface {
	FinalFrame(rest []byte) (msg []byte, ok bool)
}

// ErrFrameTooLarge closes a connection whose next frame exceeds the limit.
var ErrFrameTooLarge = errors.New("packet: frame too large")

// LengthPrefixed is the framing of DNS over TCP (RFC 1035 4.2.2, RFC 7766):
// a 2-byte big-endian length before each message.
type LengthPrefixed struct{}

// Frame implements Framer.
func (LengthPrefixed) Frame(buf []byte, maxFrame int) (int, []byte, error) {
	if len(buf) < 2 {
		return 0, nil, nil
	}
	n := int(buf[0])<<8 | int(buf[1])
	if n > maxFrame {
		return 0, nil, ErrFrameTooLarge
	}
	if len(buf) < 2+n {
		return 0, nil, nil
	}
	return 2 + n, buf[2 : 2+n : 2+n], nil
}

// AppendFrame implements Framer.
func (LengthPrefixed) AppendFrame(dst, msg []byte) []byte {
	return append(append(dst, byte(len(msg)>>8), byte(len(msg))), msg...)
}

var _ Framer = LengthPrefixed{}
