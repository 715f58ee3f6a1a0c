package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Config is every setting of the server. config.yaml documents each one
// with its default; a test keeps the two in step.
type Config struct {
	Server   ServerConfig   `koanf:"server"`
	DB       DBConfig       `koanf:"db"`
	Auth     AuthConfig     `koanf:"auth"`
	History  HistoryConfig  `koanf:"history"`
	Limits   LimitsConfig   `koanf:"limits"`
	Presence PresenceConfig `koanf:"presence"`
	Uploads  UploadsConfig  `koanf:"uploads"`
	TLS      TLSConfig      `koanf:"tls"`
	Metrics  MetricsConfig  `koanf:"metrics"`
	Log      LogConfig      `koanf:"log"`
	Cluster  ClusterConfig  `koanf:"cluster"`
	Hooks    HooksConfig    `koanf:"hooks"`
	Push     PushConfig     `koanf:"push"`
}

type ServerConfig struct {
	Addr            string        `koanf:"addr"`
	PublicURL       string        `koanf:"public_url"`
	AllowedOrigins  []string      `koanf:"allowed_origins"`
	TrustedProxies  []string      `koanf:"trusted_proxies"`
	WriteWait       time.Duration `koanf:"write_wait"`
	PongWait        time.Duration `koanf:"pong_wait"`
	SendBuffer      int           `koanf:"send_buffer"`
	SendBufferBytes int64         `koanf:"send_buffer_bytes"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	SignInTimeout   time.Duration `koanf:"sign_in_timeout"`
}

type DBConfig struct {
	Path        string        `koanf:"path"`
	LockTimeout time.Duration `koanf:"lock_timeout"`
}

type AuthConfig struct {
	Registration        string        `koanf:"registration"`
	SessionTTL          time.Duration `koanf:"session_ttl"`
	FailedLoginsPerIP   int           `koanf:"failed_logins_per_ip"`
	FailedLoginsPerUser int           `koanf:"failed_logins_per_user"`
	// FailedLoginsPerUserAndIP limits failures for one account from one
	// address, well below FailedLoginsPerUser, so a guesser slows down
	// without locking the owner out.
	FailedLoginsPerUserAndIP int           `koanf:"failed_logins_per_user_and_ip"`
	FailedLoginWindow        time.Duration `koanf:"failed_login_window"`
	SignupsPerIPPerHour      int           `koanf:"signups_per_ip_per_hour"`
	ResetTTL                 time.Duration `koanf:"reset_ttl"`
	// InviteTTL is how long an invite link lasts unless its creator says.
	InviteTTL time.Duration `koanf:"invite_ttl"`
	// Guests lets auth {username} without a password sign in a guest.
	Guests             bool `koanf:"guests"`
	GuestsPerIPPerHour int  `koanf:"guests_per_ip_per_hour"`
}

// registration is auth.registration as it applies to a database: the
// setting, or when it is empty the database's own default (invite for a
// new database, open for one created before invite links existed).
func (a AuthConfig) registration(dbDefault string) string {
	if a.Registration != "" {
		return a.Registration
	}
	return dbDefault
}

// HooksConfig is incoming webhooks (POST /hooks/TOKEN).
type HooksConfig struct {
	Enabled bool `koanf:"enabled"`
}

// PushConfig is Web Push to people who are away.
type PushConfig struct {
	Enabled bool `koanf:"enabled"`
	// Preview sends who wrote, where, and the start of the text; without
	// it a notification says only "New message".
	Preview bool `koanf:"preview"`
	// Subject is the contact push services see (mailto: or https: URL).
	Subject   string        `koanf:"subject"`
	IdleAfter time.Duration `koanf:"idle_after"`
}

type HistoryConfig struct {
	PerRoom int           `koanf:"per_room"`
	MaxAge  time.Duration `koanf:"max_age"`
	OnJoin  int           `koanf:"on_join"`
}

type LimitsConfig struct {
	MessageChars        int     `koanf:"message_chars"`
	FrameBytes          int64   `koanf:"frame_bytes"`
	MessagesPerSecond   float64 `koanf:"messages_per_second"`
	Burst               int     `koanf:"burst"`
	FramesPerSecond     float64 `koanf:"frames_per_second"`
	FramesBurst         int     `koanf:"frames_burst"`
	ConnectionsPerIP    int     `koanf:"connections_per_ip"`
	RoomsPerUser        int     `koanf:"rooms_per_user"`
	RoomsCreatedPerHour int     `koanf:"rooms_created_per_hour"`
	InvitesFromOneUser  int     `koanf:"invites_from_one_user"`
	SearchesPerMinute   int     `koanf:"searches_per_minute"`
	SignInsPerMinute    int     `koanf:"sign_ins_per_minute"`
	GroupMembers        int     `koanf:"group_members"`
}

type PresenceConfig struct {
	BroadcastLimit   int           `koanf:"broadcast_limit"`
	AnnounceInterval time.Duration `koanf:"announce_interval"`
}

type UploadsConfig struct {
	Enabled        bool  `koanf:"enabled"`
	MaxBytes       int64 `koanf:"max_bytes"`
	UserQuotaBytes int64 `koanf:"user_quota_bytes"`
	TotalBytes     int64 `koanf:"total_bytes"`
	// MinBytesPerSecond is the slowest an upload may arrive, on average.
	MinBytesPerSecond int64 `koanf:"min_bytes_per_second"`
}

type TLSConfig struct {
	CertFile     string     `koanf:"cert_file"`
	KeyFile      string     `koanf:"key_file"`
	RedirectAddr string     `koanf:"redirect_addr"`
	ACME         ACMEConfig `koanf:"acme"`
}

type ACMEConfig struct {
	Domains      []string `koanf:"domains"`
	Email        string   `koanf:"email"`
	CacheDir     string   `koanf:"cache_dir"`
	DirectoryURL string   `koanf:"directory_url"`
}

// enabled reports whether parley serves HTTPS.
func (t TLSConfig) enabled() bool { return t.CertFile != "" || len(t.ACME.Domains) > 0 }

type MetricsConfig struct {
	Enabled bool     `koanf:"enabled"`
	Allow   []string `koanf:"allow"`
}

// ClusterConfig runs this server as one node of several (see README,
// "Several nodes"); an empty node is one server on its own, the default.
type ClusterConfig struct {
	Node     string     `koanf:"node"`
	Replicas int        `koanf:"replicas"`
	NATS     NATSConfig `koanf:"nats"`
}

type NATSConfig struct {
	URL      string             `koanf:"url"`
	Monitor  []string           `koanf:"monitor"`
	Embedded EmbeddedNATSConfig `koanf:"embedded"`
}

type EmbeddedNATSConfig struct {
	Listen        string   `koanf:"listen"`
	ClusterListen string   `koanf:"cluster_listen"`
	Routes        []string `koanf:"routes"`
	StoreDir      string   `koanf:"store_dir"`
}

// enabled reports whether this server is a node of a cluster.
func (c ClusterConfig) enabled() bool { return c.Node != "" }

type LogConfig struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

func defaultConfig() Config {
	return Config{
		Server: ServerConfig{
			Addr:            ":8080",
			AllowedOrigins:  []string{},
			TrustedProxies:  []string{},
			WriteWait:       10 * time.Second,
			PongWait:        60 * time.Second,
			SendBuffer:      256,
			SendBufferBytes: 1 << 20,
			ShutdownTimeout: 5 * time.Second,
			SignInTimeout:   10 * time.Minute,
		},
		DB: DBConfig{Path: "parley.db", LockTimeout: time.Second},
		Auth: AuthConfig{
			Registration:             "",
			SessionTTL:               30 * 24 * time.Hour,
			FailedLoginsPerIP:        20,
			FailedLoginsPerUser:      100,
			FailedLoginsPerUserAndIP: 10,
			FailedLoginWindow:        15 * time.Minute,
			SignupsPerIPPerHour:      10,
			ResetTTL:                 24 * time.Hour,
			InviteTTL:                7 * 24 * time.Hour,
			Guests:                   false,
			GuestsPerIPPerHour:       60,
		},
		History: HistoryConfig{PerRoom: 100, MaxAge: 0, OnJoin: 50},
		Limits: LimitsConfig{
			MessageChars:        4000,
			FrameBytes:          64 << 10,
			MessagesPerSecond:   5,
			Burst:               20,
			FramesPerSecond:     20,
			FramesBurst:         100,
			ConnectionsPerIP:    50,
			RoomsPerUser:        200,
			RoomsCreatedPerHour: 20,
			InvitesFromOneUser:  5,
			SearchesPerMinute:   10,
			SignInsPerMinute:    30,
			GroupMembers:        8,
		},
		Presence: PresenceConfig{BroadcastLimit: 250, AnnounceInterval: 15 * time.Second},
		Uploads: UploadsConfig{Enabled: true, MaxBytes: 10 << 20, UserQuotaBytes: 200 << 20, TotalBytes: 2 << 30,
			MinBytesPerSecond: 10 << 10},
		TLS: TLSConfig{
			RedirectAddr: ":80",
			ACME:         ACMEConfig{Domains: []string{}},
		},
		Metrics: MetricsConfig{Enabled: true, Allow: []string{"127.0.0.1/32", "::1/128"}},
		Log:     LogConfig{Level: "info", Format: "text"},
		Cluster: ClusterConfig{Replicas: 3, NATS: NATSConfig{Monitor: []string{},
			Embedded: EmbeddedNATSConfig{Listen: "127.0.0.1:4222", ClusterListen: "127.0.0.1:6222", Routes: []string{}}}},
		Hooks: HooksConfig{Enabled: true},
		Push:  PushConfig{Enabled: true, Preview: true, IdleAfter: 2 * time.Minute},
	}
}

// configSources is what loadConfig reads besides the defaults.
type configSources struct {
	File         string            // -config: this file, which must exist
	Search       []string          // without -config: the first of these that exists, if any
	Environ      []string          // KEY=value pairs; PARLEY_* are read
	FlagSettings map[string]string // koanf key -> value, only flags given
}

// defaultConfigFiles are where the commands look for settings when no
// -config is given: the working directory, then where the .deb and
// README's VPS guide put them. None need exist.
func defaultConfigFiles() []string { return []string{"config.yaml", "/etc/parley/config.yaml"} }

// listKeys are settings that hold lists; from the environment they are
// comma-separated.
var listKeys = map[string]bool{"server.allowed_origins": true, "server.trusted_proxies": true,
	"tls.acme.domains": true, "metrics.allow": true, "cluster.nats.monitor": true, "cluster.nats.embedded.routes": true}

// loadConfig layers the built-in defaults, the config file, PARLEY_*
// environment variables and flags, later ones winning, and validates the
// result.
func loadConfig(src configSources) (Config, error) {
	k := koanf.New(".")
	defaults := map[string]any{}
	flattenConfig(reflect.ValueOf(defaultConfig()), "", defaults)
	if err := k.Load(confmap.Provider(defaults, "."), nil); err != nil {
		return Config{}, fmt.Errorf("load defaults: %w", err)
	}
	// PARLEY_TLS_ACME_DOMAINS names tls.acme.domains: keys are matched with
	// their dots read as underscores, since keys contain underscores too.
	byEnvName := map[string]string{}
	sections := map[string]bool{}
	for _, key := range k.Keys() {
		byEnvName[strings.ReplaceAll(key, ".", "_")] = key
		sections[strings.SplitN(key, ".", 2)[0]] = true
	}

	path := src.File
	if path == "" {
		for _, p := range src.Search {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Config{}, fmt.Errorf("config file %q does not exist", path)
			}
			return Config{}, fmt.Errorf("read config file %q: %w", path, err)
		}
	}

	var envErr error
	envProvider := env.Provider(".", env.Opt{
		Prefix:      "PARLEY_",
		EnvironFunc: func() []string { return src.Environ },
		TransformFunc: func(name, value string) (string, any) {
			// PARLEY_SERVER_ALLOWED_ORIGINS -> server.allowed_origins
			envName := strings.ToLower(strings.TrimPrefix(name, "PARLEY_"))
			key, ok := byEnvName[envName]
			if !ok {
				// Other PARLEY_ variables (test switches, say) are not ours
				// to judge, but a typo inside a section is.
				if sections[strings.SplitN(envName, "_", 2)[0]] && envErr == nil {
					envErr = fmt.Errorf("environment variable %s names no setting", name)
				}
				return "", nil
			}
			if listKeys[key] {
				return key, splitList(value)
			}
			return key, value
		},
	})
	if err := k.Load(envProvider, nil); err != nil {
		return Config{}, fmt.Errorf("read environment: %w", err)
	}
	if envErr != nil {
		return Config{}, envErr
	}

	flags := map[string]any{}
	for key, v := range src.FlagSettings {
		flags[key] = v
	}
	if err := k.Load(confmap.Provider(flags, "."), nil); err != nil {
		return Config{}, fmt.Errorf("read flags: %w", err)
	}

	var cfg Config
	err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(",")),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &cfg,
		TagName:          "koanf",
	}})
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// flattenConfig adds every setting of v, a Config or one of its sections,
// to out under its koanf key ("server.addr"), named by the koanf tags.
func flattenConfig(v reflect.Value, prefix string, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		key := prefix + t.Field(i).Tag.Get("koanf")
		if f := v.Field(i); f.Kind() == reflect.Struct {
			flattenConfig(f, key+".", out)
		} else {
			out[key] = f.Interface()
		}
	}
}

func splitList(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// validate names the first bad key and value it finds.
func (c Config) validate() error {
	bad := func(key string, v any, rule string) error {
		return fmt.Errorf("%s = %v: %s", key, v, rule)
	}
	if _, _, err := net.SplitHostPort(c.Server.Addr); err != nil {
		return bad("server.addr", c.Server.Addr, "want HOST:PORT, such as :8080 or 127.0.0.1:8080")
	}
	for _, o := range c.Server.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return bad("server.allowed_origins", o, "each origin is scheme://host[:port], such as https://chat.example.com")
		}
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := parseCIDROrIP(p); err != nil {
			return bad("server.trusted_proxies", p, "each entry is an IP address or CIDR range")
		}
	}
	switch {
	case c.Server.WriteWait <= 0:
		return bad("server.write_wait", c.Server.WriteWait, "must be positive")
	case c.Server.PongWait < time.Second:
		return bad("server.pong_wait", c.Server.PongWait, "must be at least 1s")
	case c.Server.SendBuffer < 1:
		return bad("server.send_buffer", c.Server.SendBuffer, "must be at least 1")
	case c.Server.SendBufferBytes != 0 && c.Server.SendBufferBytes < 64<<10:
		return bad("server.send_buffer_bytes", c.Server.SendBufferBytes, "must be 0 (no limit) or at least 65536")
	case c.Server.ShutdownTimeout <= 0:
		return bad("server.shutdown_timeout", c.Server.ShutdownTimeout, "must be positive")
	case c.Server.SignInTimeout < 0:
		return bad("server.sign_in_timeout", c.Server.SignInTimeout, "must be 0 (never) or more")
	case c.DB.Path == "":
		return bad("db.path", `""`, "must name a file")
	case c.DB.LockTimeout <= 0:
		return bad("db.lock_timeout", c.DB.LockTimeout, "must be positive")
	case c.Auth.Registration != "" && c.Auth.Registration != "open" && c.Auth.Registration != "invite" && c.Auth.Registration != "closed":
		return bad("auth.registration", c.Auth.Registration, "must be open, invite or closed (or empty for the database's default)")
	case c.Auth.SessionTTL < time.Minute:
		return bad("auth.session_ttl", c.Auth.SessionTTL, "must be at least 1m")
	case c.Auth.FailedLoginsPerIP < 0:
		return bad("auth.failed_logins_per_ip", c.Auth.FailedLoginsPerIP, "must be 0 (no limit) or more")
	case c.Auth.FailedLoginsPerUser < 0:
		return bad("auth.failed_logins_per_user", c.Auth.FailedLoginsPerUser, "must be 0 (no limit) or more")
	case c.Auth.FailedLoginsPerUserAndIP < 0:
		return bad("auth.failed_logins_per_user_and_ip", c.Auth.FailedLoginsPerUserAndIP, "must be 0 (no limit) or more")
	case c.Auth.FailedLoginWindow <= 0:
		return bad("auth.failed_login_window", c.Auth.FailedLoginWindow, "must be positive")
	case c.Auth.SignupsPerIPPerHour < 0:
		return bad("auth.signups_per_ip_per_hour", c.Auth.SignupsPerIPPerHour, "must be 0 (no limit) or more")
	case c.History.PerRoom < 0:
		return bad("history.per_room", c.History.PerRoom, "must be 0 (keep all) or more")
	case c.History.OnJoin < 0 || c.History.OnJoin > maxHistoryPage:
		return bad("history.on_join", c.History.OnJoin, fmt.Sprintf("must be between 0 and %d", maxHistoryPage))
	case c.Limits.MessageChars < 1:
		return bad("limits.message_chars", c.Limits.MessageChars, "must be at least 1")
	case c.Limits.FrameBytes < 1024:
		return bad("limits.frame_bytes", c.Limits.FrameBytes, "must be at least 1024")
	case int64(c.Limits.MessageChars)*4+1024 > c.Limits.FrameBytes:
		return bad("limits.frame_bytes", c.Limits.FrameBytes,
			fmt.Sprintf("must hold a frame with limits.message_chars (%d) characters of up to 4 bytes each, plus 1024", c.Limits.MessageChars))
	case c.Limits.MessagesPerSecond < 0:
		return bad("limits.messages_per_second", c.Limits.MessagesPerSecond, "must be 0 (no limit) or more")
	case c.Limits.MessagesPerSecond > 0 && c.Limits.Burst < 1:
		return bad("limits.burst", c.Limits.Burst, "must be at least 1")
	case c.Limits.FramesPerSecond < 0:
		return bad("limits.frames_per_second", c.Limits.FramesPerSecond, "must be 0 (no limit) or more")
	case c.Limits.FramesPerSecond > 0 && c.Limits.FramesBurst < 1:
		return bad("limits.frames_burst", c.Limits.FramesBurst, "must be at least 1")
	case c.Limits.ConnectionsPerIP < 0:
		return bad("limits.connections_per_ip", c.Limits.ConnectionsPerIP, "must be 0 (no limit) or more")
	case c.Limits.RoomsPerUser < 0:
		return bad("limits.rooms_per_user", c.Limits.RoomsPerUser, "must be 0 (no limit) or more")
	case c.Limits.RoomsCreatedPerHour < 0:
		return bad("limits.rooms_created_per_hour", c.Limits.RoomsCreatedPerHour, "must be 0 (no limit) or more")
	case c.Presence.BroadcastLimit < 0:
		return bad("presence.broadcast_limit", c.Presence.BroadcastLimit, "must be 0 or more")
	case c.Presence.AnnounceInterval < 0:
		return bad("presence.announce_interval", c.Presence.AnnounceInterval, "must be 0 (no limit) or more")
	case c.Limits.InvitesFromOneUser < 0:
		return bad("limits.invites_from_one_user", c.Limits.InvitesFromOneUser, "must be 0 (no limit) or more")
	case c.Limits.SearchesPerMinute < 0:
		return bad("limits.searches_per_minute", c.Limits.SearchesPerMinute, "must be 0 (no limit) or more")
	case c.Limits.SignInsPerMinute < 0:
		return bad("limits.sign_ins_per_minute", c.Limits.SignInsPerMinute, "must be 0 (no limit) or more")
	}
	switch {
	case c.Auth.ResetTTL < time.Minute:
		return bad("auth.reset_ttl", c.Auth.ResetTTL, "must be at least 1m")
	case c.Auth.InviteTTL < time.Minute:
		return bad("auth.invite_ttl", c.Auth.InviteTTL, "must be at least 1m")
	case c.Auth.GuestsPerIPPerHour < 0:
		return bad("auth.guests_per_ip_per_hour", c.Auth.GuestsPerIPPerHour, "must be 0 (no limit) or more")
	case c.Limits.GroupMembers < 2 || c.Limits.GroupMembers > 100:
		return bad("limits.group_members", c.Limits.GroupMembers, "must be between 2 and 100")
	case c.Push.IdleAfter < 0:
		return bad("push.idle_after", c.Push.IdleAfter, "must be 0 (only when no connection is open) or more")
	case c.Push.Subject != "" && !strings.HasPrefix(c.Push.Subject, "mailto:") && !strings.HasPrefix(c.Push.Subject, "https://"):
		return bad("push.subject", c.Push.Subject, "must be a mailto: address or an https:// URL")
	case c.History.MaxAge < 0:
		return bad("history.max_age", c.History.MaxAge, "must be 0 (keep everything) or more")
	case c.History.MaxAge > 0 && c.History.MaxAge < time.Minute:
		return bad("history.max_age", c.History.MaxAge, "must be at least 1m")
	}
	switch {
	case c.Uploads.MaxBytes < 1:
		return bad("uploads.max_bytes", c.Uploads.MaxBytes, "must be at least 1")
	case c.Uploads.MaxBytes > 1<<30:
		return bad("uploads.max_bytes", c.Uploads.MaxBytes, "must be at most 1 GiB (1073741824)")
	case c.Uploads.UserQuotaBytes < 0:
		return bad("uploads.user_quota_bytes", c.Uploads.UserQuotaBytes, "must be 0 (no limit) or more")
	case c.Uploads.TotalBytes < 0:
		return bad("uploads.total_bytes", c.Uploads.TotalBytes, "must be 0 (no limit) or more")
	case c.Uploads.MinBytesPerSecond < 0:
		return bad("uploads.min_bytes_per_second", c.Uploads.MinBytesPerSecond, "must be 0 (no minimum) or more")
	}
	if c.Server.PublicURL != "" && !strings.HasPrefix(c.Server.PublicURL, "http://") && !strings.HasPrefix(c.Server.PublicURL, "https://") {
		return bad("server.public_url", c.Server.PublicURL, "must start with http:// or https://")
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	for _, a := range c.Metrics.Allow {
		if _, err := parseCIDROrIP(a); err != nil {
			return bad("metrics.allow", a, "each entry is an IP address or CIDR range")
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", c.Log.Format, "must be text or json")
	}
	return c.Cluster.validate()
}

func (c ClusterConfig) validate() error {
	bad := func(key string, v any, rule string) error { return fmt.Errorf("%s = %v: %s", key, v, rule) }
	if !c.enabled() {
		return nil
	}
	if !validName(c.Node, maxUsernameLen) {
		return bad("cluster.node", c.Node, "a node's name is 1-32 letters, digits, '_', '-' or '.'")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return bad("cluster.replicas", c.Replicas, "must be between 1 and 5")
	}
	if c.NATS.URL != "" {
		return nil
	}
	e := c.NATS.Embedded
	if _, _, err := net.SplitHostPort(e.Listen); err != nil {
		return bad("cluster.nats.embedded.listen", e.Listen, "want HOST:PORT, such as 127.0.0.1:4222")
	}
	if _, _, err := net.SplitHostPort(e.ClusterListen); err != nil {
		return bad("cluster.nats.embedded.cluster_listen", e.ClusterListen, "want HOST:PORT, such as 0.0.0.0:6222")
	}
	for _, r := range e.Routes {
		if !strings.HasPrefix(r, "nats://") {
			return bad("cluster.nats.embedded.routes", r, "each route is nats://host:port")
		}
	}
	if c.Replicas > len(e.Routes)+1 {
		return bad("cluster.replicas", c.Replicas, fmt.Sprintf("needs at least %d NATS servers; routes lists %d besides this one",
			c.Replicas, len(e.Routes)))
	}
	return nil
}

func (t TLSConfig) validate() error {
	bad := func(key string, v any, rule string) error { return fmt.Errorf("%s = %v: %s", key, v, rule) }
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return bad("tls.cert_file", t.CertFile, "tls.cert_file and tls.key_file go together")
	case t.CertFile != "" && len(t.ACME.Domains) > 0:
		return bad("tls.acme.domains", t.ACME.Domains, "use either tls.cert_file/tls.key_file or tls.acme, not both")
	case t.ACME.Email != "" && !strings.Contains(t.ACME.Email, "@"):
		return bad("tls.acme.email", t.ACME.Email, "an email address, or empty for none")
	}
	for _, d := range t.ACME.Domains {
		if d == "" || strings.ContainsAny(d, "/: ") || net.ParseIP(d) != nil {
			return bad("tls.acme.domains", d, "each entry is a DNS name, such as chat.example.com")
		}
	}
	if t.RedirectAddr != "" {
		if _, _, err := net.SplitHostPort(t.RedirectAddr); err != nil {
			return bad("tls.redirect_addr", t.RedirectAddr, "want HOST:PORT, such as :80, or empty for none")
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func parseCIDROrIP(s string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("not an IP or CIDR: %q", s)
	}
	bits := 32
	if ip.To4() == nil {
		bits = 128
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// newLogger builds the server's logger from the log settings.
func newLogger(c LogConfig, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
