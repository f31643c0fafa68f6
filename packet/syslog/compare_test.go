package syslog

// The parser is checked against, and measured beside, github.com/leodido/go-syslog,
// the Go ecosystem's maintained syslog parser (a test-only dependency).

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// goSyslogFields is what go-syslog's RFC 5424 parser reads from msg, in the
// shape of shardd's records; ok is false when it refuses the message.
func goSyslogFields(msg []byte) (map[string]any, bool) {
	m, err := rfc5424.NewParser().Parse(msg)
	if err != nil {
		return nil, false
	}
	sm := m.(*rfc5424.SyslogMessage)
	out := map[string]any{"format": "rfc5424", "version": float64(sm.Version)}
	if sm.Priority != nil {
		out["priority"] = float64(*sm.Priority)
		out["facility"] = float64(*sm.Facility)
		out["severity"] = float64(*sm.Severity)
	}
	for k, v := range map[string]*string{"hostname": sm.Hostname, "app_name": sm.Appname, "procid": sm.ProcID, "msgid": sm.MsgID, "message": sm.Message} {
		if v != nil {
			out[k] = *v
		}
	}
	if sm.Timestamp != nil {
		out["timestamp"] = *sm.Timestamp
	}
	if sm.StructuredData != nil {
		sd := map[string]any{}
		for id, params := range *sm.StructuredData {
			p := map[string]any{}
			for k, v := range params {
				p[k] = v
			}
			sd[id] = p
		}
		out["structured_data"] = sd
	}
	return out, true
}

// agree compares shardd's record of msg with go-syslog's reading of it,
// whenever go-syslog accepts it as RFC 5424.
func agree(t *testing.T, msg []byte) {
	t.Helper()
	want, ok := goSyslogFields(msg)
	if !ok || len(msg) == 0 || bytes.ContainsAny(msg[len(msg)-1:], "\n\r\x00") {
		return // refused, or ends in a trailer shardd strips
	}
	got := record(t, msg, time.Now())
	for _, k := range []string{"received", "from", "shard", "proto"} {
		delete(got, k)
	}
	if got["format"] != "rfc5424" {
		t.Fatalf("%q: go-syslog parses it as RFC 5424, shardd: %v", msg, got)
	}
	if ts, ok := want["timestamp"].(time.Time); ok {
		mine, err := time.Parse(time.RFC3339Nano, got["timestamp"].(string))
		if err != nil || !mine.Equal(ts) {
			t.Fatalf("%q: timestamp %v, go-syslog %v", msg, got["timestamp"], ts)
		}
		delete(want, "timestamp")
		delete(got, "timestamp")
	}
	if sd, ok := got["structured_data"].(map[string]any); ok {
		// go-syslog keeps one copy of a repeated element or parameter, as a
		// JSON reader of shardd's record does.
		b, _ := json.Marshal(sd)
		var again map[string]any
		_ = json.Unmarshal(b, &again)
		got["structured_data"] = again
	}
	if !utf8Equal(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("%q:\nshardd    %s\ngo-syslog %s", msg, gj, wj)
	}
}

// utf8Equal compares after mapping invalid UTF-8 in want's strings to
// U+FFFD, as shardd's JSON does.
func utf8Equal(got, want map[string]any) bool {
	b, _ := json.Marshal(want)
	var w map[string]any
	_ = json.Unmarshal(b, &w)
	return reflect.DeepEqual(got, w)
}

func TestAgreesWithGoSyslog(t *testing.T) {
	for _, msg := range seeds(t) {
		agree(t, msg)
	}
}

// FuzzAgreesWithGoSyslog: every message go-syslog accepts as RFC 5424,
// shardd parses to the same fields.
func FuzzAgreesWithGoSyslog(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) { agree(t, msg) })
}

func benchMessages(b *testing.B) map[string][]byte {
	return map[string][]byte{
		"rfc5424": []byte(`<165>1 2026-11-25T08:00:00.000003-07:00 mymachine.example.com evntslog 8710 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry`),
		"rfc3164": []byte(`<34>Nov 25 22:14:15 mymachine su[8710]: 'su root' failed for lonvick on /dev/pts/8`),
	}
}

// BenchmarkParse compares shardd's parser with go-syslog's, parsing only
// and parsing plus encoding one JSON record (go-syslog: encoding/json).
func BenchmarkParse(b *testing.B) {
	o := Origin{Received: time.Now(), From: netip.MustParseAddrPort("192.0.2.1:514"), Proto: "udp"}
	for name, msg := range benchMessages(b) {
		var goParser gosyslog.Machine
		if name == "rfc5424" {
			goParser = rfc5424.NewParser()
		} else {
			goParser = rfc3164.NewParser(rfc3164.WithYear(rfc3164.CurrentYear{}), rfc3164.WithTimezone(time.Local))
		}
		b.Run("shardd/parse/"+name, func(b *testing.B) {
			var r Record
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				Parse(msg, o.Received, &r)
			}
			if r.Format == Invalid {
				b.Fatal(r.Err)
			}
		})
		b.Run("go-syslog/parse/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := goParser.Parse(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("shardd/parse+json/"+name, func(b *testing.B) {
			var r Record
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				Parse(msg, o.Received, &r)
				buf = AppendJSON(buf[:0], &r, &o)
			}
		})
		b.Run("go-syslog/parse+json/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				m, err := goParser.Parse(msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
