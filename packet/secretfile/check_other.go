//go:build !unix

package secretfile

import (
	"io/fs"
	"os"
)

// Check accepts every file: without Unix owners and modes there is
// nothing it can check.
func Check(fs.FileInfo) error { return nil }

func openNonblock(path string) (*os.File, error) { return os.Open(path) }
