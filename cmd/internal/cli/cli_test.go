package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, err := ParseInterspersed(fs, []string{"a", "--n", "3", "b", "-v", "--", "--c", "d"})
	if err != nil || *n != 3 || !*v || strings.Join(pos, " ") != "a b --c d" {
		t.Fatalf("pos %q n %d v %v err %v", pos, *n, *v, err)
	}
	if _, err := ParseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Fatal("unknown flag after a positional argument accepted")
	}
}
