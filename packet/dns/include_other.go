//go:build !unix

package dns

import (
	"io/fs"
	"strings"
)

// includeFS is nil: $INCLUDE opens its files with os.Open.
var includeFS fs.FS

func includeBase(path string) string { return path }

// includeErr is the parser's error msg without the zone file's name.
func includeErr(msg, file string) string { return strings.TrimPrefix(msg, file+": ") }
