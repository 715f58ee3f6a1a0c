package main

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestHealthcheck asks a real server whether it is ready: yes while it
// serves (over HTTP and HTTPS), no while it shuts down and once it is gone.
func TestHealthcheck(t *testing.T) {
	ts := startServer(t, nil)
	out, stderr, err := cliEnv(t, nil, "", "healthcheck", "-addr", ts.addr)
	if err != nil || !strings.Contains(out, "ready: http://"+ts.addr+"/readyz answered 200") {
		t.Fatalf("healthcheck of a serving server: %v %q %q", err, out, stderr)
	}
	// The port comes from the settings, as in a container: PARLEY_SERVER_ADDR.
	if _, _, err := cliEnv(t, []string{"PARLEY_SERVER_ADDR=" + ts.addr}, "", "healthcheck"); err != nil {
		t.Fatalf("healthcheck with the address from the environment: %v", err)
	}
	ts.srv.shuttingDown.Store(true)
	if _, _, err := cliEnv(t, nil, "", "healthcheck", "-addr", ts.addr); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("healthcheck of a server shutting down: %v", err)
	}
	ts.Stop()
	if _, _, err := cliEnv(t, nil, "", "healthcheck", "-addr", ts.addr, "-timeout", "1s"); err == nil {
		t.Fatal("healthcheck of a stopped server succeeded")
	}

	// Over HTTPS, with the certificate's settings as the server has them.
	certFile, keyFile, _ := selfSignedCert(t)
	cfg := testConfig(t.TempDir())
	cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.RedirectAddr = certFile, keyFile, ""
	tlsServer := startServer(t, &cfg)
	env := []string{"PARLEY_TLS_CERT_FILE=" + certFile, "PARLEY_TLS_KEY_FILE=" + keyFile}
	if out, _, err := cliEnv(t, env, "", "healthcheck", "-addr", tlsServer.addr); err != nil || !strings.Contains(out, "https://") {
		t.Fatalf("healthcheck over HTTPS: %v %q", err, out)
	}
}

// TestHealthcheck_ExitStatus: what a container runtime sees is the exit
// status of the binary, 0 for ready and 1 for not.
func TestHealthcheck_ExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, nil)
	if out, err := exec.Command(bin, "healthcheck", "-addr", ts.addr).CombinedOutput(); err != nil {
		t.Fatalf("healthcheck of a serving server: %v %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	err = exec.Command(bin, "healthcheck", "-addr", free).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("healthcheck with nothing listening: %v, want exit status 1", err)
	}
}
