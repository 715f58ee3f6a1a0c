package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// newTLSConfig builds the HTTPS configuration: from certificate files, or
// from Let's Encrypt through autocert, or nil for plain HTTP. Only
// HTTP/1.1 is offered, because WebSocket upgrades need it.
func newTLSConfig(cfg Config) (*tls.Config, *autocert.Manager, error) {
	t := cfg.TLS
	switch {
	case t.CertFile != "":
		r := &certReloader{certFile: t.CertFile, keyFile: t.KeyFile}
		if err := r.load(); err != nil {
			return nil, nil, err
		}
		return &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil, nil
	case len(t.ACME.Domains) > 0:
		m := newACMEManager(cfg)
		tc := m.TLSConfig()
		tc.NextProtos = []string{"http/1.1", acme.ALPNProto}
		tc.MinVersion = tls.VersionTLS12
		return tc, m, nil
	}
	return nil, nil, nil
}

// newACMEManager gets and renews certificates for tls.acme.domains, and
// for no other name, caching them next to the database.
func newACMEManager(cfg Config) *autocert.Manager {
	t := cfg.TLS.ACME
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(t.Domains...),
		Cache:      autocert.DirCache(acmeCacheDir(cfg)),
		Email:      t.Email,
	}
	if t.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: t.DirectoryURL}
	}
	return m
}

// acmeCacheDir is where certificates are kept: tls.acme.cache_dir, or
// acme-cache beside the database, so backing up that folder keeps both.
func acmeCacheDir(cfg Config) string {
	if cfg.TLS.ACME.CacheDir != "" {
		return cfg.TLS.ACME.CacheDir
	}
	return filepath.Join(filepath.Dir(cfg.DB.Path), "acme-cache")
}

// certReloader serves a certificate from files and picks up renewed files
// (certbot, say) without a restart, checking at most once a minute.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (r *certReloader) load() error {
	fi, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cert, r.modTime, r.checked = &cert, fi.ModTime(), time.Now()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	cert, stale := r.cert, time.Since(r.checked) > time.Minute
	if stale {
		r.checked = time.Now()
	}
	modTime := r.modTime
	r.mu.Unlock()
	if stale {
		if fi, err := os.Stat(r.certFile); err == nil && fi.ModTime().After(modTime) {
			// A failed reload keeps serving the old certificate.
			_ = r.load()
			r.mu.Lock()
			cert = r.cert
			r.mu.Unlock()
		}
	}
	return cert, nil
}

// redirectHandler sends plain-HTTP visitors to the HTTPS address; with
// ACME it also answers the HTTP-01 challenges.
func (s *server) redirectHandler(httpsAddr net.Addr) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr.String())
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	if s.acme != nil {
		return s.acme.HTTPHandler(redirect)
	}
	return redirect
}
