package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/shardd/shardd/cmd/internal/cli"
)

// usageError is bad command-line input: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// byteSize is a flag value in bytes that also takes K, M, G (and KiB, MiB,
// GiB) suffixes in any case, all powers of 1024 as socket buffers are (see
// cli.ParseSize); at most 2G less one byte.
type byteSize int

func (b *byteSize) String() string      { return cli.FormatSize(int64(*b)) }
func (b *byteSize) Placeholder() string { return "SIZE" }

func (b *byteSize) Set(s string) error {
	v, err := cli.ParseSize(s, 1<<31-1)
	if err != nil {
		return err
	}
	*b = byteSize(v)
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
// spelling that quotes the value given: "invalid value "x" for flag
// -shards: ..." -> `--shards "x": ...` (see cli.FlagError).
func rewriteFlagError(fs *flag.FlagSet, err error) error {
	return usagef("%s", cli.FlagError(fs, err, fs.Name()))
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
