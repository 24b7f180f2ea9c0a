// Package buildinfo holds what the build stamps into every Cordon binary
// with -ldflags -X: the version, the commit and the build date (the
// commit's time or SOURCE_DATE_EPOCH, so that a rebuild gives the same
// bytes).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the Makefile:
//
//	-X github.com/cordon-edr/cordon/cmd/internal/buildinfo.Version=v1.2.3
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is the build's description.
type Info struct {
	Version, Commit, Date string
}

// Get returns the stamped values, falling back to what the go tool
// recorded (module version, vcs revision and time) and then to "dev",
// "unknown".
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the --version line of the binary named name.
func String(name string) string {
	i := Get()
	return fmt.Sprintf("%s %s (commit %s, built %s, %s, %s/%s)", name, i.Version, i.Commit, i.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
