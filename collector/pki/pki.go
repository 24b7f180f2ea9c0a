// Package pki is the collector's certificate authority: it creates the CA
// and the server certificate on first run, keeps them in the data folder,
// and signs the certificates agents receive at enrollment. An agent's
// identity is the common name of its certificate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/certs"
)

// ServerName is the name the collector's certificate is issued for and
// that agents verify. Agents trust only the pinned CA, so the collector's
// network address never needs to appear in its certificate.
const ServerName = protocol.ServerName

// Lifetimes of the certificates the CA issues.
const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 2 * 365 * 24 * time.Hour
	AgentLifetime  = 2 * 365 * 24 * time.Hour
)

// Files in the data folder.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// CA holds the collector's CA and server certificate.
type CA struct {
	cert   *x509.Certificate
	key    crypto.Signer
	server tls.Certificate
}

// LoadOrCreate loads the CA and server certificate from dir, creating
// them (keys 0600) when they do not exist yet. A server certificate that
// expires within 30 days is renewed.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder %s: %w", dir, err)
	}
	caCert, caKey, err := loadPair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = createCA(dir)
	}
	if err != nil {
		return nil, err
	}
	ca := &CA{cert: caCert, key: caKey}
	srvCert, srvKey, err := loadPair(filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile))
	if errors.Is(err, os.ErrNotExist) || (err == nil && time.Until(srvCert.NotAfter) < 30*24*time.Hour) {
		srvCert, srvKey, err = ca.createServer(dir)
	}
	if err != nil {
		return nil, err
	}
	ca.server = tls.Certificate{
		Certificate: [][]byte{srvCert.Raw, caCert.Raw},
		PrivateKey:  srvKey,
		Leaf:        srvCert,
	}
	return ca, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Pin returns the CA pin agents pass to `cordon-agent enroll --ca-pin`.
func (ca *CA) Pin() string { return protocol.CAPin(ca.cert.Raw) }

// ServerCertificate returns the collector's TLS certificate with the CA
// in its chain, so an enrolling agent can check the chain against its pin.
func (ca *CA) ServerCertificate() tls.Certificate { return ca.server }

// Pool returns a pool holding only the CA, for verifying agents.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// SignAgent issues a client certificate for agentID over the public key
// of csrDER, after checking the CSR's signature. The CSR's subject is
// ignored: the collector alone names agents.
func (ca *CA) SignAgent(agentID string, csrDER []byte) ([]byte, time.Time, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, time.Time{}, fmt.Errorf("checking certificate request signature: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: agentID, Organization: []string{"Cordon agents"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(AgentLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("signing agent certificate: %w", err)
	}
	return der, tmpl.NotAfter, nil
}

// VerifyAgent checks that a client certificate chain was issued by this
// CA for client authentication and returns the agent id it names.
func (ca *CA) VerifyAgent(rawCerts [][]byte) (string, *x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return "", nil, errors.New("no client certificate")
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return "", nil, fmt.Errorf("parsing client certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", nil, fmt.Errorf("verifying client certificate: %w", err)
	}
	if cert.Subject.CommonName == "" {
		return "", nil, errors.New("client certificate names no agent")
	}
	return cert.Subject.CommonName, cert, nil
}

func createCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Cordon collector CA", Organization: []string{"Cordon"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (ca *CA) createServer(dir string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ServerName, Organization: []string{"Cordon"}},
		DNSNames:     []string{ServerName},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(serverLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating server certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if _, err := os.Stat(certPath); err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", certPath, err)
	}
	cert, err := certs.ReadCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := certs.ReadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func writePair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	if err := certs.WriteKey(keyPath, key); err != nil {
		return err
	}
	return certs.WriteCert(certPath, der)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("reading random serial: %v", err)) // crypto/rand never fails on supported systems
	}
	return n
}
