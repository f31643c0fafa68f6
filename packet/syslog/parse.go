// Package syslog turns syslog messages (RFC 5424 and RFC 3164, detected per
// message) into newline-delimited JSON records and writes them to a sink
// without losing what it accepted: [Parse] reads one message into a
// [Record] without allocating, [AppendJSON] formats it, a [Handler] per
// shard queues the lines, and one [Sink] goroutine writes them in batches.
package syslog

import (
	"bytes"
	"time"
)

// Format is the syslog dialect a message was parsed as.
type Format uint8

// Formats. Invalid is a message that did not parse: it is kept raw.
const (
	Invalid Format = iota
	RFC5424
	RFC3164
	numFormats
)

// String returns the name used in records and metric labels.
func (f Format) String() string {
	switch f {
	case RFC5424:
		return "rfc5424"
	case RFC3164:
		return "rfc3164"
	}
	return "invalid"
}

// Record is one parsed message. Its byte slices point into the message
// given to Parse (or into the record's own scratch space), so a Record is
// valid only as long as that message is.
type Record struct {
	Format   Format
	Priority int // 0..191; facility = Priority/8, severity = Priority%8
	Version  int // RFC 5424 only
	// Timestamp is RFC 3339 text (nil when the message has none). RFC 5424
	// timestamps are the sender's own text (a lowercase t or z upper-cased);
	// RFC 3164 ones are completed with the year and the local zone (see
	// Parse).
	Timestamp []byte
	Hostname  []byte
	AppName   []byte
	ProcID    []byte
	MsgID     []byte
	// StructuredData is the validated SD text of an RFC 5424 message,
	// "[id k="v"]..."; nil for "-".
	StructuredData []byte
	Message        []byte
	// Err is why the message did not parse (Format is Invalid); ErrAt is
	// the byte offset where parsing stopped.
	Err   string
	ErrAt int
	// Raw is the whole message.
	Raw []byte

	ts [40]byte // room for a completed RFC 3164 timestamp
}

// Parse reads one syslog message into r, detecting the dialect: "<PRI>1 "
// starts an RFC 5424 message, any other "<PRI>" an RFC 3164 one. It never
// allocates and never fails: a message that does not parse gets Format
// Invalid, Err and ErrAt, and is meant to be kept raw.
//
// now is the receive time. RFC 3164 timestamps without a year take the
// year (now's, the one before or the one after) that puts them closest to
// now: a December message received in January is last year's, a January
// message received on December 31 (the sender's clock a little ahead) next
// year's. Timestamps without a zone are read in now's location (the handler
// passes time.Now(): the host's zone). A date that does
// not exist (Feb 30, or 23:59:60 in an RFC 3164 timestamp) is no timestamp:
// an RFC 5424 message with one does not parse, in an RFC 3164 message the
// text stays in the message.
func Parse(msg []byte, now time.Time, r *Record) {
	*r = Record{Raw: msg, Priority: -1}
	// A trailer some senders add (LF, CRLF, NUL) is not part of the message.
	for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r' || msg[len(msg)-1] == 0) {
		msg = msg[:len(msg)-1]
	}
	pri, i, ok := parsePRI(msg)
	if !ok {
		r.fail("missing or invalid <PRI> (want <0> to <191>)", i)
		return
	}
	r.Priority = pri
	// VERSION is 1 to 3 digits without a leading zero. Only 1 is defined:
	// a message with another that does not parse as RFC 5424 is read as
	// RFC 3164 text that happens to start with a number.
	v, j := 0, i
	for j < len(msg) && j-i < 3 && isDigit(msg[j]) && !(j == i && msg[j] == '0') {
		v = v*10 + int(msg[j]-'0')
		j++
	}
	if j > i && j < len(msg) && msg[j] == ' ' {
		parse5424(msg, j, v, r)
		if v == 1 || r.Format == RFC5424 {
			return
		}
		*r = Record{Raw: r.Raw, Priority: pri}
	}
	parse3164(msg, i, now, r)
}

func (r *Record) fail(why string, at int) {
	raw, pri := r.Raw, r.Priority
	*r = Record{Raw: raw, Priority: pri, Err: why, ErrAt: at}
}

// parsePRI reads "<N>" with N 0..191 and at most 3 digits, no leading zero
// except "<0>" itself.
func parsePRI(b []byte) (pri, end int, ok bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, 0, false
	}
	i := 1
	for ; i < len(b) && i <= 4 && isDigit(b[i]); i++ {
		pri = pri*10 + int(b[i]-'0')
	}
	digits := i - 1
	if digits == 0 || digits > 3 || i >= len(b) || b[i] != '>' || pri > 191 || (digits > 1 && b[1] == '0') {
		return 0, i, false
	}
	return pri, i + 1, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// printUSASCII is RFC 5424's PRINTUSASCII: the characters a header field
// may hold.
func printUSASCII(c byte) bool { return c >= 33 && c <= 126 }

// field reads one space-terminated RFC 5424 header field of at most max
// characters starting at i; "-" is the nil value.
func field(b []byte, i, max int) (val []byte, next int, ok bool) {
	j := i
	for j < len(b) && printUSASCII(b[j]) {
		j++
	}
	if j == i || j-i > max || j >= len(b) || b[j] != ' ' {
		return nil, j, false
	}
	if j-i == 1 && b[i] == '-' {
		return nil, j + 1, true
	}
	return b[i:j:j], j + 1, true
}

// parse5424 reads VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
// MSGID SP STRUCTURED-DATA [SP MSG]; b[i] is the space after VERSION.
func parse5424(b []byte, i, version int, r *Record) {
	r.Format, r.Version = RFC5424, version
	i++
	// TIMESTAMP
	if i < len(b) && b[i] == '-' {
		i++
	} else {
		n, ok := rfc3339(b[i:])
		if !ok {
			r.fail("rfc5424: invalid timestamp (want RFC 3339 such as 2026-11-25T08:00:00.000Z, or -)", i)
			return
		}
		r.Timestamp = r.stamp(b[i : i+n : i+n])
		i += n
	}
	if i >= len(b) || b[i] != ' ' {
		r.fail("rfc5424: want a space after the timestamp", i)
		return
	}
	i++
	var ok bool
	for _, f := range [...]struct {
		dst  *[]byte
		max  int
		name string
	}{
		{&r.Hostname, 255, "rfc5424: invalid hostname (1-255 printable characters or -)"},
		{&r.AppName, 48, "rfc5424: invalid app-name (1-48 printable characters or -)"},
		{&r.ProcID, 128, "rfc5424: invalid procid (1-128 printable characters or -)"},
		{&r.MsgID, 32, "rfc5424: invalid msgid (1-32 printable characters or -)"},
	} {
		start := i
		if *f.dst, i, ok = field(b, i, f.max); !ok {
			r.fail(f.name, start)
			return
		}
	}
	// STRUCTURED-DATA
	if i < len(b) && b[i] == '-' {
		i++
	} else {
		n, at := structuredData(b[i:])
		if n == 0 {
			r.fail("rfc5424: invalid structured data (want - or [SD-ID PARAM=VALUE ...] elements)", i+at)
			return
		}
		r.StructuredData = b[i : i+n : i+n]
		i += n
	}
	if i == len(b) {
		return
	}
	if b[i] != ' ' {
		r.fail("rfc5424: want a space before the message", i)
		return
	}
	msg := b[i+1:]
	msg = bytes.TrimPrefix(msg, []byte("\xef\xbb\xbf")) // the BOM marks UTF-8; it is not content
	if len(msg) > 0 {
		r.Message = msg
	}
}

// structuredData validates one or more SD-ELEMENTs at the start of b and
// returns their length, or 0 and the offset of the error.
func structuredData(b []byte) (n, errAt int) {
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		j := sdName(b, i)
		if j == i {
			return 0, i
		}
		i = j
		for i < len(b) && b[i] == ' ' {
			i++
			j := sdName(b, i)
			if j == i || j >= len(b) || b[j] != '=' {
				return 0, j
			}
			i = j + 1
			if i >= len(b) || b[i] != '"' {
				return 0, i
			}
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' && i+1 < len(b) {
					i++
				}
				i++
			}
			if i >= len(b) {
				return 0, i
			}
			i++ // closing quote
		}
		if i >= len(b) || b[i] != ']' {
			return 0, i
		}
		i++
	}
	if i == 0 {
		return 0, 0
	}
	return i, 0
}

// sdName reads an SD-NAME (1-32 printable characters except = SP ] ")
// from b[i:] and returns where it ends (i when there is none).
func sdName(b []byte, i int) int {
	j := i
	for j < len(b) && printUSASCII(b[j]) && b[j] != '=' && b[j] != ']' && b[j] != '"' {
		j++
	}
	if j-i > 32 {
		return i
	}
	return j
}

// stamp returns a validated RFC 3339 timestamp with its T and Z upper-case
// (RFC 3339 allows lower case; many readers do not), copied into r.ts if
// it had to change.
func (r *Record) stamp(ts []byte) []byte {
	if ts[10] != 't' && ts[len(ts)-1] != 'z' {
		return ts
	}
	out := append(r.ts[:0], ts...)
	out[10] = 'T'
	if out[len(out)-1] == 'z' {
		out[len(out)-1] = 'Z'
	}
	return out
}

// daysIn is the number of days of month mon (1-12) in year.
func daysIn(mon, year int) int {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// rfc3339 validates an RFC 3339 timestamp at the start of b and returns
// its length. The fraction may have 1-9 digits: RFC 5424 allows 6, but
// senders that write nanoseconds (RFC 3339 sets no limit) are common
// enough not to make their messages parse errors. T and Z may be lower
// case (RFC 3339 5.6). The date must exist.
func rfc3339(b []byte) (int, bool) {
	// 2006-01-02T15:04:05
	if len(b) < 20 || !digits(b[0:4]) || b[4] != '-' || !digits(b[5:7]) || b[7] != '-' || !digits(b[8:10]) ||
		(b[10] != 'T' && b[10] != 't') || !digits(b[11:13]) || b[13] != ':' || !digits(b[14:16]) || b[16] != ':' || !digits(b[17:19]) {
		return 0, false
	}
	mon, day := num(b[5:7]), num(b[8:10])
	if mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, num(b[0:4])) || num(b[11:13]) > 23 || num(b[14:16]) > 59 || num(b[17:19]) > 60 {
		return 0, false
	}
	i := 19
	if b[i] == '.' {
		j := i + 1
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j == i+1 || j-i-1 > 9 {
			return 0, false
		}
		i = j
	}
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case 'Z', 'z':
		return i + 1, true
	case '+', '-':
		if len(b) < i+6 || !digits(b[i+1:i+3]) || b[i+3] != ':' || !digits(b[i+4:i+6]) || num(b[i+1:i+3]) > 23 || num(b[i+4:i+6]) > 59 {
			return 0, false
		}
		return i + 6, true
	}
	return 0, false
}

func digits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func num(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// bsdStamp reads "Mmm dd hh:mm:ss", "Mmm dd yyyy hh:mm:ss" or either with a
// fraction ".fff" at the start of b. The day may be space-padded ("Nov  5")
// or not ("Nov 5"). A time that does not exist (a second of 60, which
// time.Date would carry into the next minute) is refused; the day is checked
// against the month once the year is known (validDate).
func bsdStamp(b []byte) (mon, day, year, hh, mm, ss, nsec, n int, ok bool) {
	if len(b) < 14 {
		return
	}
	for k, m := range months {
		if string(b[:3]) == m {
			mon = k + 1
		}
	}
	if mon == 0 || b[3] != ' ' {
		return
	}
	i := 4
	if b[i] == ' ' {
		i++
	}
	for k := 0; k < 2 && i < len(b) && isDigit(b[i]); k++ {
		day = day*10 + int(b[i]-'0')
		i++
	}
	if day < 1 || day > 31 || i >= len(b) || b[i] != ' ' {
		return
	}
	i++
	if len(b) >= i+5 && digits(b[i:i+4]) && b[i+4] == ' ' {
		year = num(b[i : i+4])
		i += 5
	}
	if len(b) < i+8 || !digits(b[i:i+2]) || b[i+2] != ':' || !digits(b[i+3:i+5]) || b[i+5] != ':' || !digits(b[i+6:i+8]) {
		return
	}
	hh, mm, ss = num(b[i:i+2]), num(b[i+3:i+5]), num(b[i+6:i+8])
	if hh > 23 || mm > 59 || ss > 59 {
		return
	}
	i += 8
	if i < len(b) && b[i] == '.' {
		j := i + 1
		scale := 100000000
		for j < len(b) && isDigit(b[j]) && j-i <= 9 {
			nsec += int(b[j]-'0') * scale
			scale /= 10
			j++
		}
		if j == i+1 {
			return
		}
		i = j
	}
	return mon, day, year, hh, mm, ss, nsec, i, true
}

// bsdTime completes an RFC 3164 timestamp: with its own year if it has one,
// else with the year around now's that puts it closest to now. ok is false
// if the date does not exist in that year (Feb 30; Feb 29 with no leap year
// near now).
func bsdTime(now time.Time, mon, day, year, hh, mm, ss, nsec int) (t time.Time, ok bool) {
	if year != 0 {
		if day > daysIn(mon, year) {
			return t, false
		}
		return time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, now.Location()), true
	}
	local := now
	var best time.Duration
	for y := local.Year() - 1; y <= local.Year()+1; y++ {
		if day > daysIn(mon, y) {
			continue
		}
		c := time.Date(y, time.Month(mon), day, hh, mm, ss, nsec, now.Location())
		d := c.Sub(local)
		if d < 0 {
			d = -d
		}
		if !ok || d < best {
			t, best, ok = c, d, true
		}
	}
	return t, ok
}

// parse3164 reads [TIMESTAMP SP [HOSTNAME SP]] [TAG[PID]: ]MSG from b[i:],
// as leniently as the senders of this dialect need: the timestamp may be
// BSD-style (with or without year and fraction) or RFC 3339; a missing
// timestamp leaves the rest to the message.
func parse3164(b []byte, i int, now time.Time, r *Record) {
	r.Format = RFC3164
	rest := b[i:]
	stamped := false
	if n, ok := rfc3339(rest); ok && (len(rest) == n || rest[n] == ' ') {
		r.Timestamp = r.stamp(rest[:n:n])
		rest, stamped = rest[n:], true
	} else if mon, day, year, hh, mm, ss, nsec, n, ok := bsdStamp(rest); ok && (len(rest) == n || rest[n] == ' ') {
		if t, ok := bsdTime(now, mon, day, year, hh, mm, ss, nsec); ok {
			r.Timestamp = t.AppendFormat(r.ts[:0], time.RFC3339Nano)
			rest, stamped = rest[n:], true
		}
	}
	if stamped {
		rest = bytes.TrimLeft(rest, " ")
		// HOSTNAME, unless the next word is already the tag.
		if w := word(rest); len(w) > 0 && w[len(w)-1] != ':' && bytes.IndexByte(w, '[') < 0 {
			r.Hostname = w
			rest = bytes.TrimLeft(rest[len(w):], " ")
		}
	}
	// TAG: "app[pid]:", "app:", or after a header "app".
	j := 0
	for j < len(rest) && j < 48 && printUSASCII(rest[j]) && rest[j] != '[' && rest[j] != ':' {
		j++
	}
	if j > 0 && j < len(rest) {
		app, k := rest[:j:j], j
		var pid []byte
		if rest[k] == '[' {
			e := bytes.IndexByte(rest[k:], ']')
			if e > 1 && e <= 129 && !bytes.ContainsAny(rest[k+1:k+e], " [") {
				pid = rest[k+1 : k+e : k+e]
				k += e + 1
			} else {
				k = -1
			}
		}
		switch {
		case k < 0:
		case k < len(rest) && rest[k] == ':':
			r.AppName, r.ProcID = app, pid
			rest = rest[k+1:]
			if len(rest) > 0 && rest[0] == ' ' {
				rest = rest[1:]
			}
		case (pid != nil || stamped) && (k == len(rest) || rest[k] == ' '):
			// RFC 3164 4.1.3: any non-alphanumeric character ends the TAG;
			// after a header the first word is the tag even without a
			// colon (rsyslog forwards "host tag msg" so). Without a header
			// a word needs a colon or [pid] to count as one.
			r.AppName, r.ProcID = app, pid
			rest = rest[k:]
			if len(rest) > 0 && rest[0] == ' ' {
				rest = rest[1:]
			}
		}
	}
	if len(rest) > 0 {
		r.Message = rest
	}
}

// word returns the bytes of b up to the first space.
func word(b []byte) []byte {
	if k := bytes.IndexByte(b, ' '); k >= 0 {
		return b[:k:k]
	}
	return b[:len(b):len(b)]
}

// Facility returns the facility code (Priority / 8), or -1 without a priority.
func (r *Record) Facility() int {
	if r.Priority < 0 {
		return -1
	}
	return r.Priority >> 3
}

// Severity returns the severity code (Priority % 8), or -1 without a priority.
func (r *Record) Severity() int {
	if r.Priority < 0 {
		return -1
	}
	return r.Priority & 7
}
