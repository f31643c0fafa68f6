// Package syslog turns syslog messages (RFC 5424 and RFC 3164, detected per
// message) into newline-delimited JSON records for a sink: [Parse] reads
// one message into a [Record] without allocating, [AppendJSON] formats it,
// and a [Handler] per shard hands the lines of each batch to the shard's
// producer of a sink (package [github.com/shardd/shardd/packet/sink]), which
// writes them without losing what it accepted.
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
	msg = trimTrailer(msg)
	pri, i, ok := parsePRI(msg)
	if !ok {
		r.fail("missing or invalid <PRI> (want <0> to <191>)", i)
		return
	}
	r.Priority = pri
	// Only VERSION 1 is defined: a message with another that does not
	// parse as RFC 5424 is read as RFC 3164 text that happens to start
	// with a number.
	if v, j, ok := version(msg, i); ok {
		parse5424(msg, j, v, r)
		if v == 1 || r.Format == RFC5424 {
			return
		}
		*r = Record{Raw: r.Raw, Priority: pri}
	}
	parse3164(msg, i, now, r)
}

// trimTrailer drops a trailer some senders add (LF, CRLF, NUL): it is not
// part of the message.
func trimTrailer(msg []byte) []byte {
	for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r' || msg[len(msg)-1] == 0) {
		msg = msg[:len(msg)-1]
	}
	return msg
}

// version reads "VERSION SP" at b[i:]: 1 to 3 digits without a leading
// zero; j is the index of the space.
func version(b []byte, i int) (v, j int, ok bool) {
	j = i
	for j < len(b) && j-i < 3 && isDigit(b[j]) && !(j == i && b[j] == '0') {
		v = v*10 + int(b[j]-'0')
		j++
	}
	return v, j, j > i && j < len(b) && b[j] == ' '
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
		end, ok := sdElement(b, i+1)
		if !ok {
			return 0, end
		}
		i = end
	}
	if i == 0 {
		return 0, 0
	}
	return i, 0
}

// sdElement reads SD-ID *(SP SD-PARAM) "]" at b[i:], after the "[": it
// returns where the element ends, or ok false and where it went wrong.
func sdElement(b []byte, i int) (end int, ok bool) {
	j := sdName(b, i)
	if j == i {
		return i, false
	}
	i = j
	for i < len(b) && b[i] == ' ' {
		if i, ok = sdParam(b, i+1); !ok {
			return i, false
		}
	}
	if i >= len(b) || b[i] != ']' {
		return i, false
	}
	return i + 1, true
}

// sdParam reads PARAM-NAME "=" DQUOTE PARAM-VALUE DQUOTE at b[i:], as
// sdElement does.
func sdParam(b []byte, i int) (end int, ok bool) {
	j := sdName(b, i)
	if j == i || j >= len(b) || b[j] != '=' {
		return j, false
	}
	i = j + 1
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i = sdValueEnd(b, i+1)
	if i >= len(b) {
		return i, false
	}
	return i + 1, true // after the closing quote
}

// sdValueEnd returns the index of the quote that ends the PARAM-VALUE
// starting at b[i] (a quote after a backslash does not), or len(b).
func sdValueEnd(b []byte, i int) int {
	for i < len(b) && b[i] != '"' {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		i++
	}
	return i
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
	if len(b) < 20 || !layout(b, "dddd-dd-ddTdd:dd:dd") {
		return 0, false
	}
	mon, day := num(b[5:7]), num(b[8:10])
	if mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, num(b[0:4])) {
		return 0, false
	}
	if _, _, ss, ok := hms(b[11:]); !ok || ss > 60 {
		return 0, false
	}
	i, _, ok := fraction(b, 19)
	if !ok || i >= len(b) {
		return 0, false
	}
	return zone(b, i)
}

// layout reports whether b starts with the pattern l, in which d stands
// for a digit and T for T or t.
func layout(b []byte, l string) bool {
	if len(b) < len(l) {
		return false
	}
	for k := 0; k < len(l); k++ {
		c, want := b[k], l[k]
		if want == 'd' {
			if c-'0' > 9 {
				return false
			}
		} else if c != want && (want != 'T' || c != 't') {
			return false
		}
	}
	return true
}

// clock reads "15:04:05" at the start of b: an hour, minute and second
// that exist (a second of 60 is a leap second's).
func clock(b []byte) (hh, mm, ss int, ok bool) {
	if !layout(b, "dd:dd:dd") {
		return 0, 0, 0, false
	}
	hh, mm, ss, ok = hms(b)
	return hh, mm, ss, ok && ss <= 60
}

// hms reads the hour, minute and second of "15:04:05" (the layout already
// checked); ok is false if the hour or minute does not exist.
func hms(b []byte) (hh, mm, ss int, ok bool) {
	hh, mm, ss = num(b[0:2]), num(b[3:5]), num(b[6:8])
	return hh, mm, ss, hh <= 23 && mm <= 59
}

// fraction reads an optional ".fff" (1-9 digits) at b[i:]: where it ends
// and its value in nanoseconds.
func fraction(b []byte, i int) (end, nsec int, ok bool) {
	if i >= len(b) || b[i] != '.' {
		return i, 0, true
	}
	j, scale := i+1, 100000000
	for j < len(b) && isDigit(b[j]) {
		nsec += int(b[j]-'0') * scale
		scale /= 10
		j++
	}
	if j == i+1 || j-i-1 > 9 {
		return 0, 0, false
	}
	return j, nsec, true
}

// zone reads the time offset at b[i:] ("Z", "z" or "+hh:mm"), returning
// where the timestamp ends.
func zone(b []byte, i int) (int, bool) {
	switch b[i] {
	case 'Z', 'z':
		return i + 1, true
	case '+', '-':
		if layout(b[i+1:], "dd:dd") && num(b[i+1:i+3]) <= 23 && num(b[i+4:i+6]) <= 59 {
			return i + 6, true
		}
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

// bsdTS is an RFC 3164 timestamp's fields; year is 0 when it has none.
type bsdTS struct {
	mon, day, year, hh, mm, ss, nsec int
}

// bsdStamp reads "Mmm dd hh:mm:ss", "Mmm dd yyyy hh:mm:ss" or either with a
// fraction ".fff" at the start of b, and returns its length. The day may be
// space-padded ("Nov  5") or not ("Nov 5"). A time that does not exist (a
// second of 60, which time.Date would carry into the next minute) is
// refused; the day is checked against the month once the year is known
// (bsdTime).
func bsdStamp(b []byte) (ts bsdTS, n int, ok bool) {
	if len(b) < 14 || b[3] != ' ' {
		return ts, 0, false
	}
	for k, m := range months {
		if string(b[:3]) == m {
			ts.mon = k + 1
		}
	}
	i := 4
	if ts.day, i, ok = bsdDay(b, i); !ok || ts.mon == 0 {
		return ts, 0, false
	}
	if len(b) >= i+5 && digits(b[i:i+4]) && b[i+4] == ' ' {
		ts.year = num(b[i : i+4])
		i += 5
	}
	if ts.hh, ts.mm, ts.ss, ok = clock(b[i:]); !ok || ts.ss > 59 {
		return ts, 0, false
	}
	if i, ts.nsec, ok = fraction(b, i+8); !ok {
		return ts, 0, false
	}
	return ts, i, true
}

// bsdDay reads the day of the month at b[i:], space-padded or not, and the
// space after it.
func bsdDay(b []byte, i int) (day, end int, ok bool) {
	if b[i] == ' ' {
		i++
	}
	for k := 0; k < 2 && i < len(b) && isDigit(b[i]); k++ {
		day = day*10 + int(b[i]-'0')
		i++
	}
	if day < 1 || day > 31 || i >= len(b) || b[i] != ' ' {
		return 0, 0, false
	}
	return day, i + 1, true
}

// bsdTime completes an RFC 3164 timestamp: with its own year if it has one,
// else with the year around now's that puts it closest to now. ok is false
// if the date does not exist in that year (Feb 30; Feb 29 with no leap year
// near now).
func bsdTime(now time.Time, ts bsdTS) (t time.Time, ok bool) {
	at := func(y int) time.Time {
		return time.Date(y, time.Month(ts.mon), ts.day, ts.hh, ts.mm, ts.ss, ts.nsec, now.Location())
	}
	if ts.year != 0 {
		if ts.day > daysIn(ts.mon, ts.year) {
			return t, false
		}
		return at(ts.year), true
	}
	var best time.Duration
	for y := now.Year() - 1; y <= now.Year()+1; y++ {
		if ts.day > daysIn(ts.mon, y) {
			continue
		}
		c := at(y)
		d := c.Sub(now)
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
	rest, stamped := r.timestamp3164(b[i:], now)
	if stamped {
		rest = bytes.TrimLeft(rest, " ")
		// HOSTNAME, unless the next word is already the tag.
		if w := word(rest); len(w) > 0 && w[len(w)-1] != ':' && bytes.IndexByte(w, '[') < 0 {
			r.Hostname = w
			rest = bytes.TrimLeft(rest[len(w):], " ")
		}
	}
	rest = r.tag3164(rest, stamped)
	if len(rest) > 0 {
		r.Message = rest
	}
}

// timestamp3164 reads the timestamp that may start an RFC 3164 message
// (followed by a space or the end) and returns the rest.
func (r *Record) timestamp3164(rest []byte, now time.Time) ([]byte, bool) {
	if n, ok := rfc3339(rest); ok && (len(rest) == n || rest[n] == ' ') {
		r.Timestamp = r.stamp(rest[:n:n])
		return rest[n:], true
	}
	if ts, n, ok := bsdStamp(rest); ok && (len(rest) == n || rest[n] == ' ') {
		if t, ok := bsdTime(now, ts); ok {
			r.Timestamp = t.AppendFormat(r.ts[:0], time.RFC3339Nano)
			return rest[n:], true
		}
	}
	return rest, false
}

// tag3164 reads the TAG at the start of rest: "app[pid]:", "app:", or
// after a header "app"; it returns the rest.
func (r *Record) tag3164(rest []byte, stamped bool) []byte {
	app, pid, k := appAndPID(rest)
	switch {
	case app == nil:
		return rest
	case k < len(rest) && rest[k] == ':':
		k++
	case (pid != nil || stamped) && (k == len(rest) || rest[k] == ' '):
		// RFC 3164 4.1.3: any non-alphanumeric character ends the TAG;
		// after a header the first word is the tag even without a
		// colon (rsyslog forwards "host tag msg" so). Without a header
		// a word needs a colon or [pid] to count as one.
	default:
		return rest
	}
	r.AppName, r.ProcID = app, pid
	rest = rest[k:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest
}

// appAndPID reads "app" or "app[pid]" at the start of rest: the app (1-48
// printable characters up to "[" or ":", not the whole of rest), the pid
// (1-128 characters, no space or "[") if there is one, and where they end.
// app is nil if rest does not start so.
func appAndPID(rest []byte) (app, pid []byte, end int) {
	j := 0
	for j < len(rest) && j < 48 && printUSASCII(rest[j]) && rest[j] != '[' && rest[j] != ':' {
		j++
	}
	if j == 0 || j == len(rest) {
		return nil, nil, 0
	}
	if rest[j] != '[' {
		return rest[:j:j], nil, j
	}
	e := bytes.IndexByte(rest[j:], ']')
	if e > 1 && e <= 129 && !bytes.ContainsAny(rest[j+1:j+e], " [") {
		return rest[:j:j], rest[j+1 : j+e : j+e], j + e + 1
	}
	return nil, nil, 0
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
