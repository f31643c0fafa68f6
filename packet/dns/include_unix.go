//go:build unix

package dns

import (
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/shardd/shardd/packet/secretfile"
)

// includeFS opens the files $INCLUDE names as LoadZone opens a zone file:
// anything but a regular file (a FIFO with no writer, a device) is refused
// at once instead of blocking the load. The parser hands it paths from the
// root without the leading "/", so the zone file's own name is made
// absolute first (includeBase).
var includeFS fs.FS = rootFS{}

type rootFS struct{}

func (rootFS) Open(name string) (fs.File, error) {
	f, err := secretfile.OpenPlain("/" + name)
	if err != nil {
		return nil, err // the parser's error names the file
	}
	return f, nil
}

// includeBase is the name the parser is given for a zone file read from
// path: absolute, for includeFS.
func includeBase(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// includeErr is the parser's error msg for the zone file given to it as
// file, without that name, and with the root's "/" put back on the paths
// of $INCLUDEd files (an error in one starts with its path).
func includeErr(msg, file string) string {
	if m, ok := strings.CutPrefix(msg, file+": "); ok {
		msg = m
	} else {
		msg = "/" + msg // every parser error starts with its file's name
	}
	return strings.Replace(msg, " as `", " as `/", 1)
}
