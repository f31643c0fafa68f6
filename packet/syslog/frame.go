package syslog

import (
	"bytes"
	"strconv"

	"github.com/shardd/shardd/packet"
)

// Framing implements RFC 6587 framing on a byte stream, detected per frame:
// a frame that starts with digits followed by a space is octet-counted
// ("MSG-LEN SP MSG"), any other is non-transparent, ended by LF (a CR
// before it is dropped). Digits not followed by a space (a message without
// <PRI> such as "2026-11-25 12:00:00 text", or a count of more than 9
// digits) start an LF-framed frame, as in rsyslog: the message is written
// raw as a parse error instead of closing the connection. Empty lines
// between frames are skipped. At the end of the stream a last LF-framed
// message without its LF is taken too (FinalFrame).
type Framing struct{}

// maxCountDigits is the longest MSG-LEN taken as octet counting.
const maxCountDigits = 9

// octetCount reads "MSG-LEN SP" at the start of b: the length and where
// the message starts, more true if b ends before that can be told, or ok
// false if b does not start so.
func octetCount(b []byte) (n, start int, more, ok bool) {
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, 0, false, false
	}
	i := 0
	for ; i < len(b) && i <= maxCountDigits && isDigit(b[i]); i++ {
		n = n*10 + int(b[i]-'0')
	}
	switch {
	case i == len(b) && i <= maxCountDigits:
		return 0, 0, true, false
	case i > maxCountDigits || b[i] != ' ':
		return 0, 0, false, false
	}
	return n, i + 1, false, true
}

// skipEmpty returns how many LF, CR and NUL bytes start b.
func skipEmpty(b []byte) int {
	skip := 0
	for skip < len(b) && (b[skip] == '\n' || b[skip] == '\r' || b[skip] == 0) {
		skip++
	}
	return skip
}

// Frame implements packet.Framer.
func (Framing) Frame(buf []byte, maxFrame int) (int, []byte, error) {
	skip := skipEmpty(buf)
	b := buf[skip:]
	if len(b) == 0 {
		if skip > maxFrame {
			return 0, nil, packet.ErrFrameTooLarge // a flood of empty lines
		}
		return 0, nil, nil
	}
	n, start, more, ok := octetCount(b)
	if more {
		return 0, nil, nil
	}
	if ok {
		if n > maxFrame {
			return 0, nil, packet.ErrFrameTooLarge
		}
		if len(b) < start+n {
			return 0, nil, nil
		}
		end := start + n
		return skip + end, b[start:end:end], nil
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

// FinalFrame implements packet.FinalFramer: at the end of the stream the
// bytes after the last frame are the last LF-framed message, as rsyslog's
// imtcp takes them. An octet-counted frame cut short is no message.
func (Framing) FinalFrame(rest []byte) ([]byte, bool) {
	b := rest[skipEmpty(rest):]
	if len(b) == 0 {
		return nil, false
	}
	if _, _, _, ok := octetCount(b); ok {
		return nil, false
	}
	for len(b) > 0 && (b[len(b)-1] == '\r' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b[:len(b):len(b)], len(b) > 0
}

// AppendFrame implements packet.Framer with octet counting (the syslog
// handler sends nothing; this is for completeness and tests).
func (Framing) AppendFrame(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

var (
	_ packet.Framer      = Framing{}
	_ packet.FinalFramer = Framing{}
)
