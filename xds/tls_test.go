package xds

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// issue writes a key and a certificate signed by ca (self-signed when ca
// is nil) to dir/name{.pem,-key.pem}.
func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: isCA, BasicConstraintsValid: true,
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}

// With tls set, the control plane serves only clients whose certificate
// its CA signed.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := issue(t, dir, "ca", nil, nil, true)
	issue(t, dir, "server", ca, caKey, false)
	issue(t, dir, "client", ca, caKey, false)
	issue(t, dir, "stranger", nil, nil, false) // self-signed: not from the CA
	at := func(name string) string { return filepath.Join(dir, name) }
	tlsSection := "tls: {ca_file: " + at("ca.pem") + ", cert_file: " + at("server.pem") + ", key_file: " + at("server-key.pem") + "}\n"
	path := filepath.Join(dir, "cp.yaml")
	writeFile(t, path, strings.Replace(cpFile(90, 10), "groups:", tlsSection+"groups:", 1))
	cp := startCP(t, path, "")

	good, err := ClientCredentials(configs.TLS{CAFile: at("ca.pem"), CertFile: at("client.pem"), KeyFile: at("client-key.pem")})
	require.NoError(t, err)
	s := startSidecar(t, []string{cp.addr}, func(o *ClientOptions) { o.Creds = good })
	waitWeights(t, s, 90, 10)

	bad, err := ClientCredentials(configs.TLS{CAFile: at("ca.pem"), CertFile: at("stranger.pem"), KeyFile: at("stranger-key.pem")})
	require.NoError(t, err)
	stranger := startSidecar(t, []string{cp.addr}, func(o *ClientOptions) { o.Creds = bad })
	plain := startSidecar(t, []string{cp.addr}, nil)
	time.Sleep(500 * time.Millisecond)
	assert.Nil(t, stranger.weights(), "a certificate the CA did not sign gets nothing")
	assert.Nil(t, plain.weights(), "plaintext gets nothing")

	_, err = ClientCredentials(configs.TLS{CAFile: at("missing.pem"), CertFile: at("client.pem"), KeyFile: at("client-key.pem")})
	assert.ErrorContains(t, err, "ca_file")
}
