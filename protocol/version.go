package protocol

import "fmt"

// ALPN is the application protocol both peers negotiate in TLS.
const ALPN = "cordon/1"

// The version this build speaks. A peer refuses an unknown major; minors
// only add fields, which proto3 ignores when it does not know them.
const (
	VersionMajor = 1
	VersionMinor = 0
)

// CurrentVersion returns the version this build speaks.
func CurrentVersion() *Version {
	return &Version{Major: VersionMajor, Minor: VersionMinor}
}

// ErrVersion reports a peer that speaks a major version this build does not.
type ErrVersion struct {
	Got *Version
}

func (e *ErrVersion) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("protocol version missing (this build speaks %d.%d)", VersionMajor, VersionMinor)
	}
	return fmt.Sprintf("unsupported protocol version %d.%d (this build speaks %d.x)", e.Got.GetMajor(), e.Got.GetMinor(), VersionMajor)
}

// CheckVersion returns *ErrVersion unless v has this build's major version.
func CheckVersion(v *Version) error {
	if v == nil || v.GetMajor() != VersionMajor {
		return &ErrVersion{Got: v}
	}
	return nil
}
