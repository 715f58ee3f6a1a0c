package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certFor writes a self-signed certificate for the given DNS names and
// returns the certificate file's path.
func certFor(t *testing.T, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPublicURL: the address links name when no browser's request says
// it, from the settings alone.
func TestPublicURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"public_url wins", func(c *Config) {
			c.Server.PublicURL = "https://chat.example.com/"
			c.TLS.ACME.Domains = []string{"x.example"}
		},
			"https://chat.example.com"},
		{"ACME domain", func(c *Config) { c.Server.Addr = ":443"; c.TLS.ACME.Domains = []string{"chat.example.com"} }, "https://chat.example.com"},
		{"certificate's name on 443", func(c *Config) {
			c.Server.Addr = ":443"
			c.TLS.CertFile = certFor(t, "*.example.com", "chat.example.com")
		}, "https://chat.example.com"},
		{"certificate's name on another port", func(c *Config) {
			c.Server.Addr = ":8443"
			c.TLS.CertFile = certFor(t, "chat.example.com")
		}, "https://chat.example.com:8443"},
		{"nothing to go by", func(c *Config) { c.Server.Addr = ":8080" }, "http://localhost:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			tc.set(&cfg)
			if got := publicURL(cfg); got != tc.want {
				t.Fatalf("publicURL = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCLI_ResetLinkAddress: parley user reset names server.public_url, and
// says plainly when all it can name is localhost.
func TestCLI_ResetLinkAddress(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	mustCLI(t, "forgetful-password\n", "user", "add", "forgetful", "-db", db)

	stdout, stderr, err := cliEnv(t, nil, "", "user", "reset", "forgetful", "-db", db)
	if err != nil || !strings.Contains(stdout, "http://localhost:8080/#reset=") || !strings.Contains(stderr, "server.public_url") {
		t.Fatalf("reset link without public_url: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	stdout, stderr, err = cliEnv(t, []string{"PARLEY_SERVER_PUBLIC_URL=https://chat.example.com"}, "", "user", "reset", "forgetful", "-db", db)
	if err != nil || !strings.Contains(stdout, "\nhttps://chat.example.com/#reset=") || stderr != "" {
		t.Fatalf("reset link with public_url: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
}
