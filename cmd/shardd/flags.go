package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// usageError is bad command-line input: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// byteSize is a flag value in bytes that also takes K, M, G (and KiB, MiB,
// GiB) suffixes, all powers of 1024 as socket buffers are.
type byteSize int

func (b *byteSize) String() string { return strconv.Itoa(int(*b)) }

func (b *byteSize) Set(s string) error {
	num, mult := s, 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 31)
	if err != nil || uint64(v)*uint64(mult) > 1<<31-1 {
		return errors.New("want a byte count such as 4194304, 4M or 512KiB (at most 2GiB)")
	}
	*b = byteSize(int(v) * mult)
	return nil
}

// choice is a flag value restricted to a fixed set of words.
type choice struct {
	value   string
	allowed []string
}

func (c *choice) String() string { return c.value }

func (c *choice) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(c.allowed, ", "))
}

// rewriteFlagError turns the flag package's messages into one line with GNU
// spelling: "invalid value "x" for flag -shards: ..." -> "--shards x: ...".
func rewriteFlagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return usagef("unknown flag --%s (see shardd --help for the flags)", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return usagef("flag --%s needs a value (see shardd --help)", strings.TrimLeft(name, "-"))
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -name: reason
		val, rest, _ := strings.Cut(rest, " for flag -")
		name, reason, _ := strings.Cut(rest, ": ")
		if reason == "parse error" {
			reason = "not a number"
		}
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		}
		return usagef("--%s %s: %s", name, val, reason)
	}
	if strings.HasPrefix(msg, "invalid boolean") {
		return usagef("%s", strings.ReplaceAll(msg, " -", " --"))
	}
	return usagef("%s", msg)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
