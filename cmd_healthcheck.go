package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

const healthcheckUsage = `Usage: parley healthcheck [-config FILE] [-addr HOST:PORT] [-url URL] [-timeout DURATION]

Asks the server on this machine whether it takes work (GET /readyz) and
exits 0 when it answers 200, 1 otherwise: for a container's HEALTHCHECK,
a monitoring script, or a check after an upgrade. It reads the settings
as serve does, so it finds the port (server.addr) and whether to speak
HTTPS by itself.

`

// healthcheckTimeout bounds the whole check by default, in time; it must
// be less than the container HEALTHCHECK's --timeout.
const healthcheckTimeout = 3 * time.Second

func runHealthcheck(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "config file (default: config.yaml, else /etc/parley/config.yaml, when one exists)")
	addr := fset.String("addr", "", "the server's listen address HOST:PORT (default :8080; server.addr)")
	rawURL := fset.String("url", "", "check this URL instead, such as https://chat.example.com/readyz")
	timeout := fset.Duration("timeout", healthcheckTimeout, "give up after this long")
	fset.Usage = func() {
		fmt.Fprint(stderr, healthcheckUsage)
		fset.PrintDefaults()
	}
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	settings := map[string]string{}
	if *addr != "" {
		settings["server.addr"] = *addr
	}
	cfg, err := loadConfig(configSources{File: *configPath, Search: defaultConfigFiles(), Environ: environ, FlagSettings: settings})
	if err != nil {
		return err
	}
	target, serverName := *rawURL, ""
	if target == "" {
		target, serverName = readyzURL(cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usageError{fmt.Sprintf("healthcheck: bad URL %q: %v", target, err)}
	}
	client := &http.Client{Transport: &http.Transport{
		// The server's certificate names its public host, not the
		// loopback address asked here; this check reads a status code and
		// sends nothing secret, so it does not verify the certificate. SNI
		// still names the host, for servers with ACME certificates.
		// No Proxy: never through an HTTP proxy named in the environment.
		TLSClientConfig: &tls.Config{ServerName: serverName, InsecureSkipVerify: true},
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", target, resp.Status, body)
	}
	fmt.Fprintf(stdout, "ready: %s answered %s\n", target, resp.Status)
	return nil
}

// readyzURL is where the server that cfg describes answers on this
// machine, and the host name to ask for over TLS (or "").
func readyzURL(cfg Config) (string, string) {
	host, port, _ := net.SplitHostPort(cfg.Server.Addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening on every address takes loopback too
	}
	scheme, serverName := "http", ""
	if cfg.TLS.enabled() {
		scheme = "https"
		if len(cfg.TLS.ACME.Domains) > 0 {
			serverName = cfg.TLS.ACME.Domains[0]
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", serverName
}
