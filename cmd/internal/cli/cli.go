// Package cli holds the command-line conventions the shardd commands share.
package cli

import "flag"

// ParseInterspersed parses flags wherever they stand among the positional
// arguments, GNU style ("shardd :5353 --shards 2"); "--" ends the flags.
func ParseInterspersed(fs *flag.FlagSet, args []string) (positional []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// flag stops at the first non-flag, or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
