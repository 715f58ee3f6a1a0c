package main

import (
	"os"

	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// TestConfig_FileDocumentsDefaults keeps config.yaml honest: loading it
// must give exactly the built-in defaults, and it must mention every key.
func TestConfig_FileDocumentsDefaults(t *testing.T) {
	cfg, err := loadConfig(configSources{File: "config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config.yaml gives\n%+v\nbuilt-in defaults are\n%+v", cfg, want)
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider("config.yaml"), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys(t) {
		if !k.Exists(key) {
			t.Errorf("config.yaml does not document %s", key)
		}
	}
}

func configKeys(t *testing.T) []string {
	var keys []string
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key := prefix + f.Tag.Get("koanf")
			if f.Type.Kind() == reflect.Struct {
				walk(key+".", v.Field(i))
				continue
			}
			keys = append(keys, key)
		}
	}
	walk("", reflect.ValueOf(defaultConfig()))
	return keys
}

func TestConfig_Layers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "custom.yaml")
	writeFile(t, file, "server:\n  addr: \":7000\"\n  pong_wait: 30s\nhistory:\n  per_room: 20\n")
	cfg, err := loadConfig(configSources{
		File: file,
		Environ: []string{"PARLEY_HISTORY_PER_ROOM=30", "PARLEY_SERVER_ALLOWED_ORIGINS=https://a.example, https://b.example",
			"PARLEY_AUTH_SESSION_TTL=48h", "PARLEY_BROWSER_TESTS=1", "HOME=/root"},
		FlagSettings: map[string]string{"server.addr": "127.0.0.1:9000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:9000" {
		t.Errorf("flag did not win: addr %q", cfg.Server.Addr)
	}
	if cfg.Server.PongWait != 30*time.Second {
		t.Errorf("file not read: pong_wait %s", cfg.Server.PongWait)
	}
	if cfg.History.PerRoom != 30 {
		t.Errorf("environment did not beat the file: per_room %d", cfg.History.PerRoom)
	}
	if want := []string{"https://a.example", "https://b.example"}; !reflect.DeepEqual(cfg.Server.AllowedOrigins, want) {
		t.Errorf("allowed_origins %q, want %q", cfg.Server.AllowedOrigins, want)
	}
	if cfg.Auth.SessionTTL != 48*time.Hour || cfg.DB.Path != "parley.db" {
		t.Errorf("session_ttl %s, db.path %q", cfg.Auth.SessionTTL, cfg.DB.Path)
	}
}

func TestConfig_Errors(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "malformed.yaml")
	writeFile(t, malformed, "server:\n  addr: [unclosed\n")
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "sever:\n  addr: \":1\"\n")
	wrongType := filepath.Join(dir, "type.yaml")
	writeFile(t, wrongType, "history:\n  per_room: lots\n")
	for _, tc := range []struct {
		name string
		src  configSources
		want string
	}{
		{"missing named file", configSources{File: filepath.Join(dir, "nope.yaml")}, "does not exist"},
		{"malformed file", configSources{File: malformed}, "malformed.yaml"},
		{"unknown key", configSources{File: typo}, "sever"},
		{"wrong type", configSources{File: wrongType}, "per_room"},
		{"bad env value", configSources{Environ: []string{"PARLEY_AUTH_REGISTRATION=maybe"}}, "auth.registration = maybe"},
		{"env typo in a section", configSources{Environ: []string{"PARLEY_SERVER_ADR=:1"}}, "PARLEY_SERVER_ADR"},
		{"bad addr", configSources{FlagSettings: map[string]string{"server.addr": "8080"}}, "server.addr"},
		{"bad duration", configSources{Environ: []string{"PARLEY_SERVER_PONG_WAIT=soon"}}, "pong_wait"},
		{"bad origin", configSources{Environ: []string{"PARLEY_SERVER_ALLOWED_ORIGINS=example.com"}}, "server.allowed_origins"},
		{"bad proxy", configSources{Environ: []string{"PARLEY_SERVER_TRUSTED_PROXIES=proxy"}}, "server.trusted_proxies"},
		{"frame too small for messages", configSources{Environ: []string{"PARLEY_LIMITS_FRAME_BYTES=2048"}}, "limits.frame_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestConfig_Search: without -config, the first file of the search list
// that exists is read (config.yaml, then /etc/parley/config.yaml), and
// none need exist; a file named with -config must exist.
func TestConfig_Search(t *testing.T) {
	dir := t.TempDir()
	local, system := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "etc-parley-config.yaml")
	search := []string{local, system}
	if cfg, err := loadConfig(configSources{Search: search}); err != nil || !reflect.DeepEqual(cfg, defaultConfig()) {
		t.Fatalf("no file in the search list: %v", err)
	}
	writeFile(t, system, "history:\n  per_room: 7\n")
	if cfg, err := loadConfig(configSources{Search: search}); err != nil || cfg.History.PerRoom != 7 {
		t.Fatalf("the second file of the search list was not read: %v %d", err, cfg.History.PerRoom)
	}
	writeFile(t, local, "history:\n  per_room: 9\n")
	if cfg, err := loadConfig(configSources{Search: search}); err != nil || cfg.History.PerRoom != 9 {
		t.Fatalf("the first file of the search list does not come first: %v %d", err, cfg.History.PerRoom)
	}
	if _, err := loadConfig(configSources{File: filepath.Join(dir, "missing.yaml"), Search: search}); err == nil {
		t.Fatal("a missing -config file was accepted")
	}
	if got := defaultConfigFiles(); !reflect.DeepEqual(got, []string{"config.yaml", "/etc/parley/config.yaml"}) {
		t.Fatalf("defaultConfigFiles() = %v", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
