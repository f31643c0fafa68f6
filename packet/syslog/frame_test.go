package syslog

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardd/shardd/packet"
)

// TestFraming: octet counting and LF framing, detected per frame, in one
// stream; incomplete frames wait for more bytes.
func TestFraming(t *testing.T) {
	stream := []byte("17 <13>1 - - - - - -\n<13>lf framed\r\n\n17 <13>octet\ncounted<13>tail")
	var got []string
	var fr Framing
	for {
		adv, msg, err := fr.Frame(stream, 100)
		if err != nil {
			t.Fatal(err)
		}
		if adv == 0 {
			break
		}
		got = append(got, string(msg))
		stream = stream[adv:]
	}
	// The LF after the octet-counted frame is not part of it: it is skipped
	// as an empty line, as is the one after the CRLF frame.
	want := []string{"<13>1 - - - - - -", "<13>lf framed", "<13>octet\ncounted"}
	if len(got) != len(want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("frame %d: %q, want %q", i, got[i], want[i])
		}
	}
	if string(stream) != "<13>tail" {
		t.Fatalf("left %q, want the unterminated frame", stream)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"200 <13>x", packet.ErrFrameTooLarge},
		{strings.Repeat("a", 101), packet.ErrFrameTooLarge},
		{strings.Repeat("\n", 101), packet.ErrFrameTooLarge},
	} {
		if _, _, err := fr.Frame([]byte(tc.in), 100); !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, err, tc.want)
		}
	}
	if got := string(fr.AppendFrame(nil, []byte("<13>x"))); got != "5 <13>x" {
		t.Fatalf("AppendFrame: %q", got)
	}
}

// TestFramingDigitsWithoutCount: digits not followed by a space (a message
// without <PRI>, a count of 10 digits) start an LF-framed frame instead of
// failing the stream; the frames after it are read as usual.
func TestFramingDigitsWithoutCount(t *testing.T) {
	stream := []byte("2026-11-25 12:00:00 plain\n5 <13>x1234567890 ten digits\n12x\n<13>after\n")
	var got []string
	for {
		adv, msg, err := Framing{}.Frame(stream, 100)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if adv == 0 {
			break
		}
		got = append(got, string(msg))
		stream = stream[adv:]
	}
	want := []string{"2026-11-25 12:00:00 plain", "<13>x", "1234567890 ten digits", "12x", "<13>after"}
	if strings.Join(got, "|") != strings.Join(want, "|") || len(stream) != 0 {
		t.Fatalf("frames %q (left %q), want %q", got, stream, want)
	}
	// More bytes are needed before digits at the end can be told apart.
	if adv, _, err := (Framing{}).Frame([]byte("\n2026"), 100); adv != 0 || err != nil {
		t.Fatalf("digits at the end: advance %d, %v", adv, err)
	}
}

// TestFinalFrame: at the end of the stream the bytes after the last frame
// are the last LF-framed message; an octet-counted frame cut short, or
// only empty lines, are none.
func TestFinalFrame(t *testing.T) {
	for _, tc := range []struct {
		rest, msg string
		ok        bool
	}{
		{"<13>last without LF", "<13>last without LF", true},
		{"\n\r\n<13>after empty lines\r", "<13>after empty lines", true},
		{"2026", "2026", true},
		{"2026-11-25 plain", "2026-11-25 plain", true},
		{"17 <13>cut short", "", false},
		{"\n\n", "", false},
		{"", "", false},
	} {
		msg, ok := Framing{}.FinalFrame([]byte(tc.rest))
		if string(msg) != tc.msg || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.rest, msg, ok, tc.msg, tc.ok)
		}
	}
}

// FuzzFraming: no input panics; a frame never exceeds the limit or the input.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("17 <13>1 - - - - - -\n<13>lf\n"), 64)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 1 {
			return
		}
		adv, msg, err := Framing{}.Frame(b, max)
		if err == nil && (adv > len(b) || len(msg) > max || adv < 0) {
			t.Fatalf("adv %d msg %d of %d bytes, max %d", adv, len(msg), len(b), max)
		}
	})
}
