package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// unitSection reads one [section] of a systemd unit file into key ->
// values, in order (a key may be given more than once).
func unitSection(t *testing.T, path, section string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	in := false
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			in = line == "["+section+"]"
		case in:
			key, value, _ := strings.Cut(line, "=")
			out[key] = append(out[key], value)
		}
	}
	return out
}

// hardeningKey reports whether a [Service] directive is one of systemd's
// sandboxing settings (as systemd-analyze security weighs them).
func hardeningKey(key string) bool {
	for _, prefix := range []string{"Protect", "Private", "Restrict", "SystemCall", "Capability", "NoNewPrivileges",
		"LockPersonality", "MemoryDenyWriteExecute", "UMask", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
		"RemoveIPC", "ProcSubset", "DevicePolicy", "DeviceAllow", "IPAddress"} {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// TestDeploy_BackupUnitHardenedLikeServer keeps parley-backup.service at
// least as locked down as parley.service: every sandboxing setting of the
// server's unit, with the same value, except the two a backup narrows
// further (no capabilities, only the admin socket's address family).
func TestDeploy_BackupUnitHardenedLikeServer(t *testing.T) {
	server := unitSection(t, "deploy/parley.service", "Service")
	backup := unitSection(t, "deploy/parley-backup.service", "Service")
	narrower := map[string]bool{"CapabilityBoundingSet": true, "RestrictAddressFamilies": true}
	n := 0
	for key, want := range server {
		if !hardeningKey(key) {
			continue
		}
		n++
		got, ok := backup[key]
		switch {
		case !ok:
			t.Errorf("parley-backup.service lacks %s=%s", key, strings.Join(want, " "))
		case narrower[key]:
			for _, v := range strings.Fields(strings.Join(got, " ")) {
				if !slices.Contains(strings.Fields(strings.Join(want, " ")), v) {
					t.Errorf("parley-backup.service allows %s %s, which parley.service does not", key, v)
				}
			}
		case !reflect.DeepEqual(got, want):
			t.Errorf("parley-backup.service has %s=%v, parley.service %v", key, got, want)
		}
	}
	if n < 20 {
		t.Fatalf("parley.service has only %d sandboxing settings; the comparison is not checking much", n)
	}
	if backup["User"][0] != server["User"][0] || backup["ReadWritePaths"][0] != "/var/lib/parley" {
		t.Fatal("the backup must run as the server's user, writing only its data directory")
	}
}

// TestDeploy_SystemdAnalyzeSecurity asks systemd itself how exposed each
// unit is (systemd-analyze security --offline, systemd 252 and later).
func TestDeploy_SystemdAnalyzeSecurity(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	re := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)
	for _, unit := range []string{"deploy/parley.service", "deploy/parley-backup.service"} {
		// Exposure runs from 0 to 10; --threshold is in tenths. 2.5 is
		// "OK" on systemd's scale; the units were at 8.5 and 2.0 before.
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=25", unit).CombinedOutput()
		m := re.FindSubmatch(out)
		if m == nil {
			t.Skipf("systemd-analyze security --offline does not work here: %v\n%s", err, out)
		}
		t.Logf("%s: exposure %s", unit, m[1])
		if err != nil {
			t.Errorf("%s: exposure %s is above 2.5 (%v)", unit, m[1], err)
		}
	}
}

// TestDeploy_UnitStartsWithoutConfigFile runs the unit's own ExecStart
// line (the binary and data directory moved into a temporary directory),
// with no config file anywhere: parley must start, as the unit's comment
// promises.
func TestDeploy_UnitStartsWithoutConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if _, err := os.Stat("/etc/parley/config.yaml"); err == nil {
		t.Skip("this machine has /etc/parley/config.yaml; the test needs a machine without one")
	}
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	svc := unitSection(t, "deploy/parley.service", "Service")
	data := t.TempDir()
	line := strings.ReplaceAll(svc["ExecStart"][0], "/var/lib/parley", data)
	args := strings.Fields(line)
	if args[0] != "/usr/bin/parley" || slices.Contains(args, "-config") {
		t.Fatalf("ExecStart %q: want /usr/bin/parley and no -config", svc["ExecStart"][0])
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Dir = strings.ReplaceAll(svc["WorkingDirectory"][0], "/var/lib/parley", data)
	cmd.Env = append(os.Environ(), "PARLEY_SERVER_ADDR=127.0.0.1:0") // the test's port; the rest as the unit says
	p := startCommand(t, cmd)
	if status, _, _ := httpGet(t, p.url+"readyz"); status != 200 {
		t.Fatalf("readyz = %d", status)
	}
	if _, err := os.Stat(filepath.Join(data, "parley.db")); err != nil {
		t.Fatalf("the unit's -db was not used: %v", err)
	}
}

// startCommand starts a parley serve command and waits for its URL.
func startCommand(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	re := regexp.MustCompile(`open (http://\S+/) in your browser`)
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if m := re.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case url := <-found:
		return &process{cmd: cmd, url: url}
	case <-time.After(15 * time.Second):
		t.Fatalf("parley did not print its URL within 15s; stderr:\n%s", stderr.String())
		return nil
	}
}

// TestDeploy_PackagedConfig: the /etc/parley/config.yaml that the .deb
// and README install loads, and changes only what it says it changes.
func TestDeploy_PackagedConfig(t *testing.T) {
	cfg, err := loadConfig(configSources{File: "deploy/config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.DB.Path = "/var/lib/parley/parley.db"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("deploy/config.yaml gives\n%+v\nwant the defaults with db.path /var/lib/parley/parley.db:\n%+v", cfg, want)
	}
	svc := unitSection(t, "deploy/parley.service", "Service")
	if !strings.Contains(svc["ExecStart"][0], "-db "+want.DB.Path) {
		t.Fatalf("the unit's database %q is not the packaged config's %s", svc["ExecStart"][0], want.DB.Path)
	}
}
