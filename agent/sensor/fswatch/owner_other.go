//go:build !unix

package fswatch

import (
	"io/fs"
	"os"
)

// owner returns nothing where files have no POSIX owner.
func owner(fs.FileInfo) (uid, gid, name string) { return "", "", "" }

// openNoFollow opens path for reading.
func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
