package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cordon-edr/cordon/protocol"
)

func TestLoadOrCreateKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	ca1, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca1.Pin() != ca2.Pin() {
		t.Fatalf("second load changed the CA: %s → %s", ca1.Pin(), ca2.Pin())
	}
	for _, f := range []string{caKeyFile, serverKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
}

func csr(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "claims-to-be-someone"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignAndVerifyAgent(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := ca.SignAgent("agent-1", csr(t))
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := ca.VerifyAgent([][]byte{der})
	if err != nil {
		t.Fatal(err)
	}
	if id != "agent-1" {
		t.Fatalf("agent id %q, want the collector's name agent-1, not the CSR's", id)
	}

	other, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, _ := other.SignAgent("agent-1", csr(t))
	if _, _, err := ca.VerifyAgent([][]byte{foreign}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// The server certificate is not a client certificate.
	if _, _, err := ca.VerifyAgent([][]byte{ca.ServerCertificate().Certificate[0]}); err == nil {
		t.Fatal("the server certificate was accepted as an agent")
	}
	if _, _, err := ca.SignAgent("x", []byte("garbage")); err == nil {
		t.Fatal("a garbled CSR was signed")
	}
}

func TestPinnedChain(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chain := ca.ServerCertificate().Certificate
	got, err := protocol.VerifyPinnedChain(chain, ca.Pin(), protocol.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(ca.Certificate()) {
		t.Fatal("returned CA is not the collector's")
	}
	other, _ := LoadOrCreate(t.TempDir())
	if _, err := protocol.VerifyPinnedChain(chain, other.Pin(), protocol.ServerName); !errors.Is(err, protocol.ErrPinMismatch) {
		t.Fatalf("wrong pin: got %v, want ErrPinMismatch", err)
	}
	// A chain that carries the pinned CA but a leaf from another CA.
	mixed := [][]byte{other.ServerCertificate().Certificate[0], ca.Certificate().Raw}
	if _, err := protocol.VerifyPinnedChain(mixed, ca.Pin(), protocol.ServerName); err == nil {
		t.Fatal("a leaf not signed by the pinned CA was accepted")
	}
}
