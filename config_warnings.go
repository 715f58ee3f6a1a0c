package main

import (
	"log/slog"
	"net"
)

// warnAboutSettings logs, once at start-up, settings that work but will
// surprise the operator later.
func warnAboutSettings(cfg Config, logger *slog.Logger) {
	if cfg.Server.PublicURL == "" && !cfg.TLS.enabled() && behindProxy(cfg) {
		logger.Warn("parley looks to be behind a reverse proxy, but server.public_url is not set: links handed out "+
			"outside the web page (parley user reset) will name localhost; set server.public_url to the address people open",
			"addr", cfg.Server.Addr, "trusted_proxies", cfg.Server.TrustedProxies)
	}
}

// behindProxy reports whether the settings clearly put parley behind a
// reverse proxy: proxies are trusted, or it listens on loopback only.
func behindProxy(cfg Config) bool {
	if len(cfg.Server.TrustedProxies) > 0 {
		return true
	}
	host, _, err := net.SplitHostPort(cfg.Server.Addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
