package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// secretLen is the length of a secret after its prefix: 20 random bytes
// in base32.
const secretLen = 32

// NewSecret returns a fresh secret, prefix followed by 32 lowercase
// base32 characters (160 random bits), and its hash as HashSecret
// computes it.
func NewSecret(prefix string) (secret, hash string) {
	b := make([]byte, 20)
	rand.Read(b) // never fails (crypto/rand)
	secret = prefix + strings.ToLower(secretEncoding.EncodeToString(b))
	return secret, HashSecret(secret)
}

// WellFormedSecret reports whether s looks like a secret NewSecret(prefix)
// made, in either case.
func WellFormedSecret(prefix, s string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(s), prefix)
	if !ok || len(rest) != secretLen {
		return false
	}
	_, err := secretEncoding.DecodeString(strings.ToUpper(rest))
	return err == nil
}

// HashSecret returns the hex SHA-256 of a secret, case-folded: what is
// stored in place of the secret.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(s))))
	return hex.EncodeToString(sum[:])
}
