package pki

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"fmt"
	"strings"
)

// BreakGlassCode returns the agent's break-glass code: the code that
// lifts the agent's isolation locally (`cordon-agent release
// --break-glass CODE`) when the collector cannot. It is an HMAC of the
// agent id under a key derived from the CA's private key, so it needs no
// storage of its own, differs per agent, and cannot be guessed from
// another agent's code. Isolate commands carry only its hash.
func (ca *CA) BreakGlassCode(agentID string) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return "", fmt.Errorf("deriving the break-glass key from the CA key: %w", err)
	}
	kh := sha256.New()
	kh.Write([]byte("cordon break-glass v1\x00"))
	kh.Write(der)
	m := hmac.New(sha256.New, kh.Sum(nil))
	m.Write([]byte(agentID))
	sum := m.Sum(nil)[:15] // 120 bits
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum)), nil
}
