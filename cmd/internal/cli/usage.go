package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// usageWidth is where PrintFlags wraps a flag's description.
const usageWidth = 100

// maxTermWidth is the widest flag term the description column makes room
// for; a longer one (a value form such as ZONE@ADDR[:PORT]...) stands on
// its own line, its description below it.
const maxTermWidth = 36

// PrintFlags lists fs's flags in GNU spelling, one per entry, descriptions
// aligned in one column and wrapped, each with its default unless that is
// empty or false.
func PrintFlags(w io.Writer, fs *flag.FlagSet) { PrintFlagsNamed(w, fs, nil) }

// PrintFlagsNamed is PrintFlags with arg naming a flag's value where it
// knows better than the flag's type (FILE, ADDR, PREFIX, ...): "" leaves
// the type's placeholder.
func PrintFlagsNamed(w io.Writer, fs *flag.FlagSet, arg func(*flag.Flag) string) {
	term := func(f *flag.Flag) string {
		t := flagTerm(f)
		if arg == nil || !strings.Contains(t, " ") {
			return t
		}
		if a := arg(f); a != "" {
			return "--" + f.Name + " " + a
		}
		return t
	}
	col := 0
	fs.VisitAll(func(f *flag.Flag) { col = max(col, len(term(f))) })
	col = min(col, maxTermWidth)
	indent := strings.Repeat(" ", 2+col+2)
	fs.VisitAll(func(f *flag.Flag) {
		text := f.Usage
		if f.DefValue != "" && f.DefValue != "false" {
			text += " (default " + f.DefValue + ")"
		}
		lines := wrap(text, usageWidth-len(indent))
		if t := term(f); len(t) > col { // a long value form gets a line of its own
			fmt.Fprintf(w, "  %s\n%s%s\n", t, indent, lines[0])
		} else {
			fmt.Fprintf(w, "  %-*s  %s\n", col, t, lines[0])
		}
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", indent, l)
		}
	})
}

// flagTerm is a flag as --help shows it: --name, and a placeholder for its
// value unless it is a switch (a Value may name its own with a Placeholder
// method).
func flagTerm(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "--" + f.Name
	}
	arg := "VALUE"
	if p, ok := f.Value.(interface{ Placeholder() string }); ok {
		arg = p.Placeholder()
	} else if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			arg = "DURATION"
		case int, int64, uint, uint64, float64:
			arg = "N"
		case string:
			arg = "STRING"
		}
	}
	return "--" + f.Name + " " + arg
}

// wrap splits text into lines of at most width characters at spaces (a
// longer word stands alone).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// FlagError says a parse error of fs in GNU spelling, in one line that
// quotes the value as given: `unknown flag --x (see cmd --help for the
// flags)`, `--name "value": reason`. cmd names the command for the hint.
func FlagError(fs *flag.FlagSet, err error, cmd string) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Sprintf("unknown flag --%s (see %s --help for the flags)", strings.TrimLeft(name, "-"), cmd)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Sprintf("flag --%s needs a value (see %s --help)", strings.TrimLeft(name, "-"), cmd)
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -name: reason
		val, rest, _ := strings.Cut(rest, " for flag -")
		name, reason, _ := strings.Cut(rest, ": ")
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		}
		return fmt.Sprintf("--%s %q: %s", name, val, parseReason(fs.Lookup(name), val, reason))
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		// invalid boolean value "x" for -name: parse error
		val, rest, _ := strings.Cut(rest, " for -")
		name, _, _ := strings.Cut(rest, ": ")
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		}
		return fmt.Sprintf("--%s %q: want true or false", name, val)
	}
	return msg
}

// parseReason replaces the flag package's bare "parse error" by what the
// flag's type wants.
func parseReason(f *flag.Flag, val, reason string) string {
	if reason != "parse error" || f == nil {
		return reason
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return reason
	}
	switch g.Get().(type) {
	case time.Duration:
		if _, err := strconv.ParseFloat(val, 64); err == nil {
			return fmt.Sprintf("missing unit, e.g. %ss", val)
		}
		return "want a duration such as 30s, 500ms or 2m"
	case bool:
		return "want true or false"
	}
	return "not a number"
}
