package main

import (
	"parley/internal/store"

	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/acme"
)

// cli runs a parley command in-process, as the binary would, with stdin.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	err := run(context.Background(), args, nil, strings.NewReader(stdin), stdout, stderr)
	return stdout.String() + stderr.String(), err
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCLI_UsersOffline manages accounts with no server running.
func TestCLI_UsersOffline(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	if out := mustCLI(t, "first-password\n", "user", "add", "-db", db, "root"); !strings.Contains(out, "admin") {
		t.Fatalf("first account is not the admin: %s", out)
	}
	mustCLI(t, "second-password\n", "user", "add", "-db", db, "sam")
	if _, err := cli(t, "short\n", "user", "add", "-db", db, "tim"); err == nil {
		t.Fatal("a short password was accepted")
	}
	if _, err := cli(t, "another-password\n", "user", "add", "-db", db, "SAM"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate name: %v", err)
	}
	mustCLI(t, "", "user", "admin", "-db", db, "sam")
	mustCLI(t, "", "user", "admin", "-db", db, "-revoke", "root")
	mustCLI(t, "changed-password\n", "user", "passwd", "-db", db, "sam")
	link := mustCLI(t, "", "user", "reset", "-db", db, "sam")
	if !strings.Contains(link, "http://localhost:8080/#reset=") {
		t.Fatalf("reset link: %s", link)
	}
	mustCLI(t, "", "user", "rm", "-db", db, "root")
	list := mustCLI(t, "", "user", "list", "-db", db)
	for _, want := range []string{"root", "removed", "sam", "admin"} {
		if !strings.Contains(list, want) {
			t.Fatalf("user list lacks %q:\n%s", want, list)
		}
	}
	if _, err := cli(t, "", "user", "passwd", "-db", db, "nobody"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("passwd for an unknown user: %v", err)
	}

	// The server honours what the tools did.
	cfg := testConfig(t.TempDir())
	cfg.DB.Path = db
	ts := startServer(t, &cfg)
	c := dial(t, ts.WSURL())
	c.send("auth", map[string]string{"username": "sam", "password": "second-password"})
	c.expectError(codeAuthFailed)
	if a := c.auth("sam", "changed-password"); !a.IsAdmin {
		t.Fatalf("sam is not an admin: %+v", a)
	}
	r := dial(t, ts.WSURL())
	r.send("auth", map[string]string{"username": "root", "password": "first-password"})
	r.expectError(codeAuthFailed) // removed
	r.send("auth", map[string]string{"username": "Root", "password": "brand-new-password"})
	r.expectError(codeAuthFailed) // and the name stays taken
}

// TestCLI_UsersWhileServing reaches a running server through its admin
// socket, and the server acts on the changes at once.
func TestCLI_UsersWhileServing(t *testing.T) {
	ts := startServer(t, nil)
	db := ts.cfg.DB.Path
	mustCLI(t, "live-password\n", "user", "add", "-db", db, "live")
	c := dial(t, ts.WSURL())
	c.auth("live", "live-password")

	mustCLI(t, "newer-password\n", "user", "passwd", "-db", db, "live")
	c.await("loggedOut")
	c.waitClosed(frameWait)
	dial(t, ts.WSURL()).auth("live", "newer-password")

	c2 := dial(t, ts.WSURL())
	c2.auth("live", "newer-password")
	mustCLI(t, "", "user", "rm", "-db", db, "live")
	c2.await("loggedOut")
	if out := mustCLI(t, "", "user", "list", "-db", db); !strings.Contains(out, "removed") {
		t.Fatalf("list through the socket: %s", out)
	}
}

func TestCLI_Usage(t *testing.T) {
	for _, args := range [][]string{
		{"user"}, {"user", "bogus"}, {"user", "add"}, {"user", "add", "-db"}, {"user", "add", "bad name!"},
		{"backup"}, {"backup", "a", "b"}, {"restore"}, {"version", "extra"}, {"serve", "-nope"},
	} {
		_, err := cli(t, "", args...)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("parley %s: %v, want a usage error (exit 2)", strings.Join(args, " "), err)
		}
	}
	for _, args := range [][]string{{"backup", "-h"}, {"restore", "-h"}, {"user", "-h"}, {"user", "add", "-h"}, {"serve", "-h"}, {"version", "-h"}} {
		out, err := cli(t, "", args...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "Usage") {
			t.Errorf("parley %s: %v, output %q; want help", strings.Join(args, " "), err, out)
		}
	}
	if out := mustCLI(t, "", "version"); !strings.HasPrefix(out, "parley ") || !strings.Contains(out, "commit") {
		t.Errorf("version: %q", out)
	}
}

// TestCLI_BackupUnderLoad takes a backup while clients send acknowledged
// messages. The backup passes bbolt's check and holds every message
// acknowledged before it began; restored into a fresh directory, it serves.
func TestCLI_BackupUnderLoad(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	cfg.History.PerRoom = 0
	ts := startServer(t, &cfg)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c, _ := signedIn(t, ts, fmt.Sprintf("loader%d", i))
		c.join("busy")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d-%d", i, n)
				if c.trySend("chat", map[string]string{"roomId": "busy", "content": "load " + id, "clientMsgId": id}) != nil {
					return
				}
				// Wait for our own acknowledgement.
				for {
					select {
					case f := <-c.frames:
						if f.Type != "message" {
							continue
						}
						var m messageFrame
						if decodeErr := decodeInto2(f, &m); decodeErr == nil && m.ClientMsgID == id {
							mu.Lock()
							acked[id] = true
							mu.Unlock()
						} else {
							continue
						}
					case <-stop:
						return
					}
					break
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	before := make([]string, 0, len(acked))
	for id := range acked {
		before = append(before, id)
	}
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "backup.db")
	out := mustCLI(t, "", "backup", "-db", cfg.DB.Path, backup)
	if !strings.Contains(out, "through the running server") {
		t.Fatalf("backup did not go through the server: %s", out)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(before) == 0 {
		t.Fatal("nothing was acknowledged before the backup; the test proved nothing")
	}

	if err := store.CheckFile(backup); err != nil {
		t.Fatalf("backup does not check out: %v", err)
	}
	// Restore into a fresh directory and serve from it.
	fresh := filepath.Join(t.TempDir(), "restored.db")
	mustCLI(t, "", "restore", "-db", fresh, backup)
	rcfg := testConfig(t.TempDir())
	rcfg.DB.Path = fresh
	rcfg.History.PerRoom = 0
	rs := startServer(t, &rcfg)
	r, _ := signedIn(t, rs, "loader0")
	stored := map[string]bool{}
	for _, m := range allHistory(t, r, "busy") {
		stored[m.ClientMsgID] = true
	}
	for _, id := range before {
		if !stored[id] {
			t.Fatalf("message %s, acknowledged before the backup began, is not in it", id)
		}
	}
	t.Logf("backup under load: %d messages acknowledged before it began, %d in it", len(before), len(stored))
}

func decodeInto2(f Frame, v any) error { return json.Unmarshal(f.Data, v) }

// httptestRecorder runs one GET through h.
func httptestRecorder(h http.Handler, url string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	return rec
}

func TestCLI_BackupAndRestoreOffline(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	if _, err := cli(t, "", "backup", "-db", db, filepath.Join(dir, "b.db")); err == nil {
		t.Fatal("backup of a database that does not exist succeeded")
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("backup created an empty database")
	}
	mustCLI(t, "owner-password\n", "user", "add", "-db", db, "owner")
	backup := filepath.Join(dir, "b.db")
	if out := mustCLI(t, "", "backup", "-db", db, backup); !strings.Contains(out, "directly") {
		t.Fatalf("offline backup: %s", out)
	}
	mustCLI(t, "other-password\n", "user", "add", "-db", db, "later")

	// Restoring refuses junk, then replaces the database and keeps the old one.
	junk := filepath.Join(dir, "junk.db")
	writeFile(t, junk, "not a database")
	if _, err := cli(t, "", "restore", "-db", db, junk); err == nil {
		t.Fatal("restore accepted a file that is not a database")
	}
	out := mustCLI(t, "", "restore", "-db", db, backup)
	if !strings.Contains(out, "before-restore") {
		t.Fatalf("restore did not keep the previous database: %s", out)
	}
	list := mustCLI(t, "", "user", "list", "-db", db)
	if !strings.Contains(list, "owner") || strings.Contains(list, "later") {
		t.Fatalf("after restore: %s", list)
	}
	kept, _ := filepath.Glob(db + ".before-restore-*")
	if len(kept) != 1 || store.CheckFile(kept[0]) != nil {
		t.Fatalf("kept database: %v", kept)
	}
}

func TestCLI_RestoreRefusesDatabaseInUse(t *testing.T) {
	ts := startServer(t, nil)
	backup := filepath.Join(t.TempDir(), "b.db")
	mustCLI(t, "", "backup", "-db", ts.cfg.DB.Path, backup)
	if _, err := cli(t, "", "restore", "-db", ts.cfg.DB.Path, backup); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("restore over a running server: %v", err)
	}
	// Without the socket, the lock still says no.
	os.Remove(adminSocketPath(ts.cfg.DB.Path))
	if _, err := cli(t, "", "restore", "-db", ts.cfg.DB.Path, backup); !errors.Is(err, store.ErrDatabaseInUse) {
		t.Fatalf("restore over a locked database: %v", err)
	}
}

// selfSignedCert writes a certificate and key for 127.0.0.1 and localhost
// and returns their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "parley test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS_SelfSignedOverLoopback(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	cfg := testConfig(t.TempDir())
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	cfg.TLS.RedirectAddr = "127.0.0.1:0"
	ts := startServer(t, &cfg)
	httpsURL := "https://" + ts.addr + "/"
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	resp, err := client.Get(httpsURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("GET %s = %d, HSTS %q", httpsURL, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}

	// wss:// with the page's own origin, as a browser on the page would.
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	conn, _, err := d.Dial("wss://"+ts.addr+"/ws", http.Header{"Origin": {"https://" + ts.addr}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan Frame, 64), closed: make(chan struct{})}
	go c.readLoop()
	defer conn.Close()
	c.expect("connected")
	c.auth("secure", "secure-password")
	c.join("tls-room")
	c.send("chat", map[string]string{"roomId": "tls-room", "content": "over TLS"})
	c.await("message")

	// Plain HTTP is redirected to HTTPS.
	ts.srv.mu.Lock()
	redirect := ts.srv.redirectAddr
	ts.srv.mu.Unlock()
	resp, err = client.Get("http://" + redirect + "/some/page?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(ts.addr)
	want := "https://127.0.0.1:" + port + "/some/page?x=1"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("redirect: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestTLS_ACMEConfiguration checks the Let's Encrypt set-up without an
// ACME server: the settings are validated, certificates are cached next
// to the database, only the configured names get one, and port 80 answers
// challenges while redirecting everything else.
func TestTLS_ACMEConfiguration(t *testing.T) {
	// Let's Encrypt sends no expiry mail any more: the email is optional,
	// but what is given must look like one.
	if _, err := loadConfig(configSources{Environ: []string{"PARLEY_TLS_ACME_DOMAINS=chat.example.com"}}); err != nil {
		t.Fatalf("ACME without an email: %v", err)
	}
	if _, err := loadConfig(configSources{Environ: []string{"PARLEY_TLS_ACME_DOMAINS=chat.example.com", "PARLEY_TLS_ACME_EMAIL=admin"}}); err == nil ||
		!strings.Contains(err.Error(), "tls.acme.email") {
		t.Fatalf("ACME with a malformed email: %v", err)
	}
	if _, err := loadConfig(configSources{Environ: []string{"PARLEY_TLS_ACME_DOMAINS=10.0.0.1", "PARLEY_TLS_ACME_EMAIL=a@b.c"}}); err == nil {
		t.Fatal("an IP address was accepted as an ACME domain")
	}
	if _, err := loadConfig(configSources{Environ: []string{"PARLEY_TLS_CERT_FILE=/c.pem"}}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	dir := t.TempDir()
	cfg, err := loadConfig(configSources{Environ: []string{
		"PARLEY_TLS_ACME_DOMAINS=chat.example.com,www.chat.example.com", "PARLEY_TLS_ACME_EMAIL=admin@example.com",
		"PARLEY_DB_PATH=" + filepath.Join(dir, "parley.db"), "PARLEY_SERVER_ADDR=:443"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, m, err := newTLSConfig(cfg)
	if err != nil || m == nil {
		t.Fatalf("newTLSConfig: %v", err)
	}
	if got := acmeCacheDir(cfg); got != filepath.Join(dir, "acme-cache") {
		t.Fatalf("cache dir %q", got)
	}
	if !containsStr(tc.NextProtos, acme.ALPNProto) || containsStr(tc.NextProtos, "h2") {
		t.Fatalf("NextProtos %v: want acme-tls/1 and no h2", tc.NextProtos)
	}
	if err := m.HostPolicy(context.Background(), "chat.example.com"); err != nil {
		t.Fatalf("host policy refuses a configured name: %v", err)
	}
	if err := m.HostPolicy(context.Background(), "evil.example.net"); err == nil {
		t.Fatal("host policy accepts a name that was not configured")
	}
	if m.Email != "admin@example.com" || publicURL(cfg) != "https://chat.example.com" {
		t.Fatalf("email %q, public URL %q", m.Email, publicURL(cfg))
	}
	s := &server{acme: m}
	h := s.redirectHandler(&net.TCPAddr{IP: net.IPv4zero, Port: 443})
	rec := httptestRecorder(h, "http://chat.example.com/room?x=1")
	if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != "https://chat.example.com/room?x=1" {
		t.Fatalf("redirect: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := httptestRecorder(h, "http://chat.example.com/.well-known/acme-challenge/token"); rec.Code == http.StatusPermanentRedirect {
		t.Fatal("an ACME challenge was redirected instead of answered")
	}
}

func containsStr(list []string, s string) bool { return contains(list, s) }

func TestMetrics(t *testing.T) {
	ts := startServer(t, nil)
	before := scrape(t, ts.URL()+"/metrics")
	c, _ := signedIn(t, ts, "counted")
	c.join("metered")
	for i := 0; i < 3; i++ {
		c.send("chat", map[string]string{"roomId": "metered", "content": "tick"})
		c.await("message")
	}
	after := scrape(t, ts.URL()+"/metrics")
	for _, tc := range []struct {
		name  string
		delta float64
	}{
		{`parley_messages_total{kind="room"}`, 3},
		{`parley_deliveries_total`, 3},
		{`parley_store_commit_seconds_count`, 3},
	} {
		if got := after[tc.name] - before[tc.name]; got < tc.delta {
			t.Errorf("%s moved by %v, want at least %v", tc.name, got, tc.delta)
		}
	}
	for _, name := range []string{"parley_connections", "parley_users_online", "parley_rooms", "parley_db_size_bytes"} {
		if after[name] < 1 {
			t.Errorf("%s = %v, want at least 1", name, after[name])
		}
	}
	found := false
	for name, v := range after {
		found = found || (strings.HasPrefix(name, "parley_build_info{") && strings.Contains(name, "commit=") && v == 1)
	}
	if !found {
		t.Error("no parley_build_info")
	}

	// Only listed addresses may scrape.
	cfg := testConfig(t.TempDir())
	cfg.Metrics.Allow = []string{"10.0.0.0/8"}
	locked := startServer(t, &cfg)
	if status, _, _ := httpGet(t, locked.URL()+"/metrics"); status != http.StatusForbidden {
		t.Fatalf("metrics from a refused address: %d", status)
	}
	cfg2 := testConfig(t.TempDir())
	cfg2.Metrics.Enabled = false
	off := startServer(t, &cfg2)
	if status, _, _ := httpGet(t, off.URL()+"/metrics"); status != http.StatusNotFound {
		t.Fatalf("metrics when disabled: %d", status)
	}
}

// scrape fetches Prometheus text and flattens it to name{labels} -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse as Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			key := name
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			default:
				out[key] = 1
			}
		}
	}
	return out
}

func TestReadyz(t *testing.T) {
	ts := startServer(t, nil)
	if status, _, body := httpGet(t, ts.URL()+"/readyz"); status != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("readyz = %d %s", status, body)
	}
	ts.srv.shuttingDown.Store(true)
	if status, _, _ := httpGet(t, ts.URL()+"/readyz"); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz while shutting down = %d", status)
	}
}

// TestMigration_FromV1 starts on a database written by schema version 1
// (testdata/schema-v1.db: alice, bob and carol, passwords NAME-password;
// rooms general and random; 30 messages in general; 3 direct messages
// from alice to bob) and finds everything there after the upgrade.
func TestMigration_FromV1(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	fixture, err := os.ReadFile("testdata/schema-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, db, string(fixture))
	cfg := testConfig(dir)
	cfg.DB.Path = db
	ts := startServer(t, &cfg)
	waitForLog(t, ts, "migrated the database")

	backup := db + ".schema-v1.bak"
	if err := store.CheckFile(backup); err != nil {
		t.Fatalf("pre-migration backup %s: %v", backup, err)
	}
	alice := dial(t, ts.WSURL())
	a := alice.auth("alice", "alice-password")
	if !a.IsAdmin || len(a.Rooms) != 2 {
		t.Fatalf("alice after migration: %+v", a)
	}
	j := alice.join("general")
	if len(j.History) != 30 || j.History[29].Content != "general message 30" {
		t.Fatalf("general after migration: %d messages", len(j.History))
	}
	bob := dial(t, ts.WSURL())
	b := bob.auth("bob", "bob-password")
	if len(b.Unread) != 1 || b.Unread[0].Count != 3 {
		t.Fatalf("bob's unread after migration: %+v", b.Unread)
	}
	// The v2 token index covers the tokens v1 stored: a password change
	// revokes them all.
	ts.Stop()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	indexed := 0
	bdb.View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return tx.Bucket([]byte("userTokens")).ForEachBucket(func(k []byte) error {
			indexed += tx.Bucket([]byte("userTokens")).Bucket(k).Stats().KeyN
			return nil
		})
	})
	bdb.Close()
	if schema != fmt.Sprint(store.SchemaVersion) || indexed != 5 { // 3 from v1, 2 sign-ins here
		t.Fatalf("schema %s, %d tokens indexed; want %d and 5", schema, indexed, store.SchemaVersion)
	}
}

func TestRetention_MaxAge(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	s := openOffline(t, db)
	u := s.user("u")
	s.must(store.JoinRoom{RoomID: "old", UserID: u, AllowCreate: true})
	now := time.Now()
	for i := 0; i < 1200; i++ {
		age := 48 * time.Hour
		if i >= 1100 {
			age = time.Minute
		}
		s.at(now.Add(-age))
		s.must(store.PostMessage{RoomID: "old", SenderID: u, Content: fmt.Sprint(i)})
	}
	s.at(now)
	if n := s.must(store.TrimOlderThan{Cutoff: now.Add(-24 * time.Hour), Limit: 500}).Count; n != 500 {
		t.Fatalf("first batch: %d", n)
	}
	s.Close()

	cfg := testConfig(dir)
	cfg.DB.Path = db
	cfg.History.PerRoom = 0
	cfg.History.MaxAge = 24 * time.Hour
	ts := startServer(t, &cfg)
	waitForLog(t, ts, "deleted messages past history.max_age")
	c, _ := signedIn(t, ts, "u")
	msgs := allHistory(t, c, "old")
	if len(msgs) != 100 || msgs[0].Content != "1100" {
		t.Fatalf("after retention: %d messages from %q, want the 100 recent ones", len(msgs), msgs[0].Content)
	}
}

// TestResetLink: an admin issues a one-time link; it signs the user in
// with a new password, signs out their other sessions, and works once.
func TestResetLink(t *testing.T) {
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "boss") // the first account is the admin
	forgetful, _ := signedIn(t, ts, "forgetful")

	forgetful.send("resetLink", map[string]string{"username": "boss"})
	forgetful.expectError(codeForbidden)
	admin.send("resetLink", map[string]string{"username": "nobody"})
	admin.await("error")
	admin.send("resetLink", map[string]string{"username": "FORGETFUL"})
	var link resetLinkData
	decodeInto(t, admin.await("resetLink"), &link)
	base, token, ok := strings.Cut(link.URL, "#reset=")
	if !ok || link.Username != "forgetful" || base != ts.URL()+"/" {
		t.Fatalf("reset link %+v: want %s/#reset=... for the registered name", link, ts.URL())
	}

	c := dial(t, ts.WSURL())
	c.send("resetPassword", map[string]string{"resetToken": token, "newPassword": "remembered-now"})
	var a authenticatedData
	decodeInto(t, c.expect("authenticated"), &a)
	if a.Username != "forgetful" {
		t.Fatalf("reset signed in %+v", a)
	}
	forgetful.await("loggedOut")
	again := dial(t, ts.WSURL())
	again.send("resetPassword", map[string]string{"resetToken": token, "newPassword": "second-try-pass"})
	again.expectError(codeAuthFailed)
	dial(t, ts.WSURL()).auth("forgetful", "remembered-now")
}

// TestDeploy_UnitFiles keeps the systemd units in deploy/ honest about
// what README promises of them.
func TestDeploy_UnitFiles(t *testing.T) {
	for file, wants := range map[string][]string{
		"deploy/parley.service": {"User=parley", "Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes",
			"ReadWritePaths=/var/lib/parley", "ExecStart=/usr/bin/parley serve", "AmbientCapabilities=CAP_NET_BIND_SERVICE"},
		"deploy/parley-backup.service": {"User=parley", "ExecStart=/usr/bin/parley backup"},
		"deploy/parley-backup.timer":   {"OnCalendar=", "Persistent=true", "Unit=parley-backup.service"},
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(string(raw), want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
	}
}

// TestDeploy_StaticBuild builds the binary the way README says and checks
// it is static (no ELF interpreter, so no libc needed) and runs.
func TestDeploy_StaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; it is not static")
		}
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "parley ") {
		t.Fatalf("parley version: %v %s", err, out)
	}
	fi, _ := os.Stat(bin)
	t.Logf("static binary: %d bytes", fi.Size())
}
