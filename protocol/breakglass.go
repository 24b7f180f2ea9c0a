package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ArgBreakGlassSHA256 is the isolate command argument that carries the
// hash of the agent's break-glass code: the code that lifts the isolation
// locally (`cordon-agent release --break-glass CODE`) on the day the
// collector cannot. The agent keeps only the hash.
const ArgBreakGlassSHA256 = "break_glass_sha256"

// BreakGlassHash is the hex SHA-256 of a break-glass code, with
// surrounding spaces and case folded away, as both sides compute it.
func BreakGlassHash(code string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(code))))
	return hex.EncodeToString(sum[:])
}
