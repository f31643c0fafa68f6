package syslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// record parses msg and returns the JSON record as a map, checking that it
// is exactly one valid line.
func record(t testing.TB, msg []byte, now time.Time) map[string]any {
	t.Helper()
	var r Record
	Parse(msg, now, &r)
	o := Origin{Received: now, From: netip.MustParseAddrPort("192.0.2.7:514"), Shard: 3, Proto: "udp"}
	line := AppendJSON(nil, &r, &o)
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\n') != len(line)-1 {
		t.Fatalf("%q: not one line: %q", msg, line)
	}
	if !json.Valid(line) {
		t.Fatalf("%q: invalid JSON: %s", msg, line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParse(t *testing.T) {
	// A fixed zone for the timestamps that have none: now's.
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).In(time.FixedZone("UTC+1", 3600))

	for _, tc := range []struct {
		name, msg string
		want      map[string]any
	}{
		{"rfc5424 RFC example", `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`, map[string]any{
			"format": "rfc5424", "priority": 34.0, "facility": 4.0, "severity": 2.0, "version": 1.0,
			"timestamp": "2003-10-11T22:14:15.003Z", "hostname": "mymachine.example.com", "app_name": "su", "msgid": "ID47",
			"message": "'su root' failed for lonvick on /dev/pts/8"}},
		{"rfc5424 offset and procid", `<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time`, map[string]any{
			"format": "rfc5424", "priority": 165.0, "facility": 20.0, "severity": 5.0, "version": 1.0,
			"timestamp": "2003-08-24T05:14:15.000003-07:00", "hostname": "192.0.2.1", "app_name": "myproc", "procid": "8710",
			"message": "%% It's time"}},
		{"rfc5424 structured data, no message", `<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"]`, map[string]any{
			"format": "rfc5424", "priority": 165.0, "facility": 20.0, "severity": 5.0, "version": 1.0,
			"timestamp": "2003-10-11T22:14:15.003Z", "hostname": "h", "app_name": "evntslog", "msgid": "ID47",
			"structured_data": map[string]any{
				"exampleSDID@32473":     map[string]any{"iut": "3", "eventSource": "Application"},
				"examplePriority@32473": map[string]any{"class": "high"}}}},
		{"rfc5424 escapes in param values", `<13>1 2026-11-25T10:00:00Z h a p m [x@1 q="a\"b\\c\]d\n"] esc`, map[string]any{
			"format": "rfc5424", "priority": 13.0, "facility": 1.0, "severity": 5.0, "version": 1.0,
			"timestamp": "2026-11-25T10:00:00Z", "hostname": "h", "app_name": "a", "procid": "p", "msgid": "m",
			"structured_data": map[string]any{"x@1": map[string]any{"q": `a"b\c]d\n`}}, "message": "esc"}},
		{"rfc5424 all nil", `<13>1 - - - - - -`, map[string]any{
			"format": "rfc5424", "priority": 13.0, "facility": 1.0, "severity": 5.0, "version": 1.0}},
		{"rfc5424 BOM and trailing LF", "<13>1 - h - - - - \xef\xbb\xbfgr\xc3\xbc\xc3\x9fe\n", map[string]any{
			"format": "rfc5424", "priority": 13.0, "facility": 1.0, "severity": 5.0, "version": 1.0, "hostname": "h", "message": "grüße"}},
		{"rfc3164", `<34>Oct 11 22:14:15 mymachine su: 'su root' failed`, map[string]any{
			"format": "rfc3164", "priority": 34.0, "facility": 4.0, "severity": 2.0,
			"timestamp": "2026-10-11T22:14:15+01:00", "hostname": "mymachine", "app_name": "su", "message": "'su root' failed"}},
		{"rfc3164 pid, padded day", `<13>Nov  5 01:02:03 vm myapp[42]: hello`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-11-05T01:02:03+01:00", "hostname": "vm", "app_name": "myapp", "procid": "42", "message": "hello"}},
		{"rfc3164 with year", `<13>Nov 25 2024 10:00:00 host app: with year`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2024-11-25T10:00:00+01:00", "hostname": "host", "app_name": "app", "message": "with year"}},
		{"rfc3164 fraction", `<13>Nov 25 10:00:00.250 host app: x`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-11-25T10:00:00.25+01:00", "hostname": "host", "app_name": "app", "message": "x"}},
		{"rfc3164 with RFC 3339 timestamp (rsyslog's forward format)", `<13>2026-11-25T10:00:00.123+02:00 host app[7]: z`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-11-25T10:00:00.123+02:00", "hostname": "host", "app_name": "app", "procid": "7", "message": "z"}},
		{"rfc3164 without hostname", `<13>Nov 25 10:00:00 app: no host`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-11-25T10:00:00+01:00", "app_name": "app", "message": "no host"}},
		{"rfc3164 tag without colon (rsyslog's forward of an RFC 5424 message)", `<13>Nov 25 10:43:20 vm tagx via rsyslog`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-11-25T10:43:20+01:00", "hostname": "vm", "app_name": "tagx", "message": "via rsyslog"}},
		{"rfc3164 without header", `<13>hello world`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0, "message": "hello world"}},
		{"rfc3164 the year closest to now", `<13>Dec 31 23:59:59 h t: late`, map[string]any{
			"format": "rfc3164", "priority": 13.0, "facility": 1.0, "severity": 5.0,
			"timestamp": "2026-12-31T23:59:59+01:00", "hostname": "h", "app_name": "t", "message": "late"}},
		{"invalid UTF-8 becomes U+FFFD", "<13>1 - - - - - - a\xffb", map[string]any{
			"format": "rfc5424", "priority": 13.0, "facility": 1.0, "severity": 5.0, "version": 1.0, "message": "a\ufffdb"}},
		{"no PRI", "garbage\n", map[string]any{
			"format": "invalid", "parse_error": "missing or invalid <PRI> (want <0> to <191>)", "parse_error_at": 0.0, "raw": "garbage\n"}},
		{"PRI too large", "<192>1 - - - - - -", map[string]any{
			"format": "invalid", "parse_error": "missing or invalid <PRI> (want <0> to <191>)", "parse_error_at": 4.0, "raw": "<192>1 - - - - - -"}},
		{"rfc5424 bad month", "<13>1 2026-13-01T00:00:00Z h a p m - x", map[string]any{
			"format": "invalid", "parse_error": "rfc5424: invalid timestamp (want RFC 3339 such as 2026-11-25T08:00:00.000Z, or -)", "parse_error_at": 6.0,
			"raw": "<13>1 2026-13-01T00:00:00Z h a p m - x"}},
		{"rfc5424 unterminated SD", `<13>1 - h a p m [x@1 a="b"`, map[string]any{
			"format": "invalid", "parse_error": "rfc5424: invalid structured data (want - or [SD-ID PARAM=VALUE ...] elements)", "parse_error_at": 26.0,
			"raw": `<13>1 - h a p m [x@1 a="b"`}},
		{"empty", "", map[string]any{
			"format": "invalid", "parse_error": "missing or invalid <PRI> (want <0> to <191>)", "parse_error_at": 0.0, "raw": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := record(t, []byte(tc.msg), now)
			for _, k := range []string{"received", "from", "shard", "proto"} {
				if _, ok := got[k]; !ok {
					t.Errorf("no %q", k)
				}
				delete(got, k)
			}
			if !reflect.DeepEqual(got, tc.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.want)
				t.Errorf("%s\n got %s\nwant %s", tc.msg, gj, wj)
			}
		})
	}
}

// TestBSDTimestamps: RFC 3164 timestamps get the year closest to the
// receive time, either way across New Year; "Nov 5" needs no padding; dates
// and times that do not exist are no timestamp (their text stays in the
// message); RFC 3339 timestamps are checked too and get upper-case T and Z.
func TestBSDTimestamps(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		now, msg       string
		ts, host, text string // ts "": no timestamp
	}{
		{"2026-12-31T23:59:50Z", "<13>Jan  1 00:00:05 h t: new year", "2027-01-01T00:00:05Z", "h", "new year"},
		{"2027-01-01T00:00:10Z", "<13>Dec 31 23:59:55 h t: old year", "2026-12-31T23:59:55Z", "h", "old year"},
		{"2027-01-15T12:00:00Z", "<13>Dec 20 08:00:00 h t: december", "2026-12-20T08:00:00Z", "h", "december"},
		{"2026-06-15T12:00:00Z", "<13>Jun 15 11:59:00 h t: same year", "2026-06-15T11:59:00Z", "h", "same year"},
		{"2026-11-25T12:00:00Z", "<13>Nov 5 01:02:03 h t: single space", "2026-11-05T01:02:03Z", "h", "single space"},
		{"2026-11-25T12:00:00Z", "<13>Nov 05 01:02:03 h t: zero padded", "2026-11-05T01:02:03Z", "h", "zero padded"},
		{"2028-03-01T12:00:00Z", "<13>Feb 29 10:00:00 h t: leap day", "2028-02-29T10:00:00Z", "h", "leap day"},
		{"2026-03-01T12:00:00Z", "<13>Feb 29 10:00:00 h t: no leap year near", "", "", "Feb 29 10:00:00 h t: no leap year near"},
		{"2026-03-01T12:00:00Z", "<13>Feb 30 10:00:00 h t: no such day", "", "", "Feb 30 10:00:00 h t: no such day"},
		{"2026-03-01T12:00:00Z", "<13>Feb 29 2026 10:00:00 h t: with year", "", "", "Feb 29 2026 10:00:00 h t: with year"},
		{"2026-03-01T12:00:00Z", "<13>Apr 31 10:00:00 h t: april", "", "", "Apr 31 10:00:00 h t: april"},
		{"2026-12-31T23:59:59Z", "<13>Dec 31 23:59:60 h t: leap second", "", "", "Dec 31 23:59:60 h t: leap second"},
		{"2026-11-25T12:00:00Z", "<13>2026-11-25t10:00:00.5z h t: lower case", "2026-11-25T10:00:00.5Z", "h", "lower case"},
	} {
		var r Record
		Parse([]byte(tc.msg), at(tc.now), &r)
		if r.Format != RFC3164 || string(r.Timestamp) != tc.ts || string(r.Hostname) != tc.host || string(r.Message) != tc.text {
			t.Errorf("%s at %s: format %v timestamp %q host %q message %q; want %q %q %q",
				tc.msg, tc.now, r.Format, r.Timestamp, r.Hostname, r.Message, tc.ts, tc.host, tc.text)
		}
	}
	// RFC 5424: a date that does not exist does not parse; lower case t and
	// z are upper-cased; up to 9 fraction digits are taken, 10 are not.
	for _, tc := range []struct{ msg, ts string }{
		{"<13>1 2026-02-29T10:00:00Z h a - - - x", ""},
		{"<13>1 2028-02-29T10:00:00Z h a - - - x", "2028-02-29T10:00:00Z"},
		{"<13>1 2026-11-25t10:00:00.123456789z h a - - - x", "2026-11-25T10:00:00.123456789Z"},
		{"<13>1 2026-11-25T10:00:00.1234567891Z h a - - - x", ""},
	} {
		var r Record
		Parse([]byte(tc.msg), time.Now(), &r)
		if tc.ts == "" && r.Format != Invalid || tc.ts != "" && (r.Format != RFC5424 || string(r.Timestamp) != tc.ts) {
			t.Errorf("%s: format %v timestamp %q (%s), want %q", tc.msg, r.Format, r.Timestamp, r.Err, tc.ts)
		}
	}
}

func TestOrigin(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 5, time.FixedZone("X", 7200))
	got := record(t, []byte("<13>x"), now)
	if got["received"] != "2026-11-25T10:00:00.000000005Z" || got["from"] != "192.0.2.7:514" || got["shard"] != 3.0 || got["proto"] != "udp" {
		t.Fatalf("origin fields: %v", got)
	}
}

// TestErrTextNeedsNoEscaping: AppendJSON writes Err without escaping.
func TestErrTextNeedsNoEscaping(t *testing.T) {
	for _, msg := range seeds(t) {
		var r Record
		Parse(msg, time.Now(), &r)
		for _, c := range []byte(r.Err) {
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				t.Fatalf("error text %q needs escaping", r.Err)
			}
		}
	}
}

// seeds are the lines of every file in testdata/syslog.
func seeds(t testing.TB) [][]byte {
	files, _ := filepath.Glob("../../testdata/syslog/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata/syslog/*.txt")
	}
	var out [][]byte
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
		f.Close()
	}
	return out
}

// replaceInvalid maps each byte that is not valid UTF-8 to U+FFFD, as the
// JSON encoder does.
func replaceInvalid(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// FuzzParse: arbitrary bytes never panic and always give exactly one valid
// JSON line; one that did not parse carries the whole message raw.
func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg []byte) {
		m := record(t, msg, now)
		switch m["format"] {
		case "invalid":
			if m["raw"] != replaceInvalid(msg) || m["parse_error"] == "" {
				t.Fatalf("%q: raw %q, error %v", msg, m["raw"], m["parse_error"])
			}
		case "rfc5424", "rfc3164":
			p, ok := m["priority"].(float64)
			if !ok || p < 0 || p > 191 || m["facility"] != float64(int(p)/8) || m["severity"] != float64(int(p)%8) {
				t.Fatalf("%q: priority fields %v", msg, m)
			}
			if ts, ok := m["timestamp"].(string); ok {
				if _, err := time.Parse(time.RFC3339Nano, strings.ToUpper(ts)); err != nil && !strings.Contains(err.Error(), "out of range") {
					t.Fatalf("%q: timestamp %q: %v", msg, ts, err)
				}
			}
		default:
			t.Fatalf("%q: format %v", msg, m["format"])
		}
	})
}

func TestParseAllocatesNothing(t *testing.T) {
	msgs := seeds(t)
	var r Record
	buf := make([]byte, 0, 64<<10)
	o := Origin{Received: time.Now(), From: netip.MustParseAddrPort("[2001:db8::1]:514"), Proto: "udp"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			Parse(m, o.Received, &r)
			buf = AppendJSON(buf[:0], &r, &o)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per %d messages", allocs, len(msgs))
	}
}
