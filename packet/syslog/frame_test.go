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
		{"12x <13>x", ErrBadOctetCount},
		{"1234567890 x", ErrBadOctetCount},
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
