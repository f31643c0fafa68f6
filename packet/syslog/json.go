package syslog

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Origin is what the receiving side knows of a message: when and from where
// it arrived, and which shard took it.
type Origin struct {
	Received time.Time
	From     netip.AddrPort
	Shard    int
	Proto    string // "udp" or "tcp" (TLS too: a stream over TCP)
	// Peer is the TLS client certificate's subject (mutual TLS; written
	// as tls_peer), nil for none.
	Peer []byte
	// Truncated is how many bytes were cut off the end of a message longer
	// than MaxMessage (written as truncated_bytes).
	Truncated int
}

// AppendJSON appends r as one line of JSON, newline included, to dst. The
// line has the origin, the format and every field the message had (absent
// fields are left out); a message that did not parse has parse_error,
// parse_error_at and raw instead. Strings are JSON-escaped; bytes that are
// not valid UTF-8 become U+FFFD. It allocates only if dst must grow.
func AppendJSON(dst []byte, r *Record, o *Origin) []byte {
	dst = append(dst, `{"received":"`...)
	dst = o.Received.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, fromField...)
	dst = o.From.AppendTo(dst)
	dst = append(dst, `","shard":`...)
	dst = strconv.AppendInt(dst, int64(o.Shard), 10)
	dst = append(dst, `,"proto":"`...)
	dst = append(dst, o.Proto...)
	dst = append(dst, '"')
	if len(o.Peer) > 0 {
		dst = append(dst, `,"tls_peer":"`...)
		dst = appendEscaped(dst, o.Peer)
		dst = append(dst, '"')
	}
	if o.Truncated > 0 {
		dst = append(dst, `,"truncated_bytes":`...)
		dst = strconv.AppendInt(dst, int64(o.Truncated), 10)
	}
	dst = append(dst, `,"format":"`...)
	dst = append(dst, r.Format.String()...)
	dst = append(dst, '"')
	if r.Format == Invalid {
		dst = append(dst, `,"parse_error":`...)
		dst = append(append(append(dst, '"'), r.Err...), '"') // plain ASCII without quotes (TestErrTextNeedsNoEscaping)
		dst = append(dst, `,"parse_error_at":`...)
		dst = strconv.AppendInt(dst, int64(r.ErrAt), 10)
		dst = append(dst, `,"raw":`...)
		dst = appendString(dst, r.Raw)
		return append(dst, "}\n"...)
	}
	dst = append(dst, `,"priority":`...)
	dst = strconv.AppendInt(dst, int64(r.Priority), 10)
	dst = append(dst, `,"facility":`...)
	dst = strconv.AppendInt(dst, int64(r.Facility()), 10)
	dst = append(dst, `,"severity":`...)
	dst = strconv.AppendInt(dst, int64(r.Severity()), 10)
	if r.Version > 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, int64(r.Version), 10)
	}
	dst = appendField(dst, `,"timestamp":`, r.Timestamp)
	dst = appendField(dst, `,"hostname":`, r.Hostname)
	dst = appendField(dst, `,"app_name":`, r.AppName)
	dst = appendField(dst, `,"procid":`, r.ProcID)
	dst = appendField(dst, `,"msgid":`, r.MsgID)
	if r.StructuredData != nil {
		dst = append(dst, `,"structured_data":`...)
		dst = appendSD(dst, r.StructuredData)
	}
	dst = appendField(dst, `,"message":`, r.Message)
	return append(dst, "}\n"...)
}

func appendField(dst []byte, name string, v []byte) []byte {
	if v == nil {
		return dst
	}
	return appendString(append(dst, name...), v)
}

// appendSD writes validated structured data as {"id":{"name":"value",...},...}.
// Parameter values are unescaped (\" \\ \]) before JSON escaping; a
// parameter or element repeated in the message is repeated in the object.
func appendSD(dst, sd []byte) []byte {
	dst = append(dst, '{')
	i := 0
	for i < len(sd) && sd[i] == '[' {
		if i > 0 {
			dst = append(dst, ',')
		}
		i++
		j := sdName(sd, i)
		dst = appendString(dst, sd[i:j])
		dst = append(dst, ":{"...)
		i = j
		first := true
		for i < len(sd) && sd[i] == ' ' {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			i++
			j := sdName(sd, i)
			dst = appendString(dst, sd[i:j])
			dst = append(dst, ':')
			i = j + 2 // ="
			start := i
			i = sdValueEnd(sd, i)
			dst = appendSDValue(dst, sd[start:i])
			i++ // closing quote
		}
		dst = append(dst, '}')
		i++ // ]
	}
	return append(dst, '}')
}

// appendSDValue JSON-escapes an SD PARAM-VALUE, undoing RFC 5424's escapes
// of '"', '\' and ']' (a backslash before anything else stays).
func appendSDValue(dst, v []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			dst = appendEscaped(dst, v[start:i])
			start = i + 1
			i++
		}
	}
	dst = appendEscaped(dst, v[start:])
	return append(dst, '"')
}

// appendString appends s as a quoted JSON string.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s JSON-escaped, without quotes.
func appendEscaped(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		rn, size := utf8.DecodeRune(s[i:])
		if rn == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
