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

func TestParseSize(t *testing.T) {
	const max = 1<<31 - 1
	for in, want := range map[string]int64{
		"0": 0, "4194304": 4194304, "4M": 4 << 20, "4m": 4 << 20, "512KiB": 512 << 10, "512kib": 512 << 10,
		"512KIB": 512 << 10, "64k": 64 << 10, "64K": 64 << 10, "1G": 1 << 30, "1g": 1 << 30, "1GiB": 1 << 30,
		"2MiB": 2 << 20, "2mib": 2 << 20, "2047M": 2047 << 20,
	} {
		if got, err := ParseSize(in, max); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "4X", "12X", "M", "KiB", "2G", "3G", "1.5M", "4 M", "4MB", "99999999999999999999"} {
		got, err := ParseSize(in, max)
		if err == nil {
			t.Errorf("ParseSize(%q) accepted as %d", in, got)
		} else if !strings.Contains(err.Error(), "want a byte count such as 4194304, 4M or 512KiB (at most 2G)") {
			t.Errorf("ParseSize(%q): %v", in, err)
		}
	}
	for n, want := range map[int64]string{0: "0", 1000: "1000", 4 << 20: "4M", 512 << 10: "512K", 1 << 30: "1G", 1536 << 10: "1536K"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n), max); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestFlagError(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("guard-interval", 0, "")
	fs.Int("shards", 0, "")
	fs.Bool("pin", false, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--guard-interval", "5"}, `--guard-interval "5": missing unit, e.g. 5s`},
		{[]string{"--guard-interval", "1.5"}, `--guard-interval "1.5": missing unit, e.g. 1.5s`},
		{[]string{"--guard-interval", "soon"}, `--guard-interval "soon": want a duration such as 30s, 500ms or 2m`},
		{[]string{"--shards", "two"}, `--shards "two": not a number`},
		{[]string{"--shards", "2 "}, `--shards "2 ": not a number`},
		{[]string{"--pin=maybe"}, `--pin "maybe": want true or false`},
		{[]string{"--nope"}, "unknown flag --nope (see t --help for the flags)"},
		{[]string{"--shards"}, "flag --shards needs a value (see t --help)"},
	} {
		err := fs.Parse(tc.args)
		if err == nil {
			t.Errorf("%q accepted", tc.args)
			continue
		}
		if got := FlagError(fs, err, "t"); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestPrintFlagsAligned(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("guard-interval", 10e9, strings.Repeat("long words here ", 20))
	fs.Int("n", 64, "count")
	fs.Bool("pin", false, "pin")
	fs.String("metrics", "", "address")
	var b strings.Builder
	PrintFlags(&b, fs)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := strings.Index(lines[0], "long words")
	for _, l := range lines {
		if len(l) > usageWidth {
			t.Errorf("line longer than %d: %q", usageWidth, l)
		}
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("description not at column %d: %q", col, l)
		}
	}
	for _, want := range []string{"--guard-interval DURATION", "(default 10s)", "--n N", "count (default 64)", "--pin  ", "--metrics STRING"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "default false") || strings.Contains(b.String(), "(default )") {
		t.Errorf("empty defaults shown:\n%s", b.String())
	}
}
