package protocol

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// CAPin returns the pin of a CA certificate: "sha256:" and the hex SHA-256
// of its DER encoding.
func CAPin(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParsePin checks the form of a pin ("sha256:" and 64 hex digits, case
// insensitive) and returns it normalized.
func ParsePin(pin string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(pin))
	hexPart, ok := strings.CutPrefix(p, "sha256:")
	if !ok {
		return "", fmt.Errorf("CA pin %q: must start with \"sha256:\"", pin)
	}
	if b, err := hex.DecodeString(hexPart); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("CA pin %q: want 64 hex digits after \"sha256:\"", pin)
	}
	return p, nil
}

// ErrPinMismatch is returned when no certificate of the presented chain
// matches the pinned CA.
var ErrPinMismatch = errors.New("collector CA does not match the pin")

// VerifyPinnedChain checks that the server chain in rawCerts is signed by
// a CA whose pin is pin, and returns that CA. It is meant for
// tls.Config.VerifyPeerCertificate on the enrolling agent, which has no
// CA of its own yet.
func VerifyPinnedChain(rawCerts [][]byte, pin, serverName string) (*x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return nil, errors.New("collector presented no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing collector certificate: %w", err)
		}
		certs = append(certs, c)
	}
	var ca *x509.Certificate
	for i, c := range certs {
		if subtle.ConstantTimeCompare([]byte(CAPin(rawCerts[i])), []byte(pin)) == 1 && c.IsCA {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, ErrPinMismatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       serverName,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("verifying collector certificate against the pinned CA: %w", err)
	}
	return ca, nil
}
