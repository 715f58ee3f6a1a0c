package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// instrument measures every HTTP request that routes serves, by the
// route's pattern ("GET /files/{id}/{name}", so the labels stay few) and
// status code, into parley_http_request_duration_seconds. WebSocket
// upgrades are connections, not requests, and are left out.
func (m *metrics) instrument(next http.Handler) http.Handler {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern and status code (WebSocket upgrades excluded).",
		Buckets: prometheus.DefBuckets, // 5ms .. 10s
	}, []string{"route", "code"})
	if err := m.registry.Register(hist); err != nil {
		// routes was called again for the same server: keep counting in
		// the histogram registered the first time.
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			panic(err) // a programming error: a clashing metric name
		}
		hist = already.ExistingCollector.(*prometheus.HistogramVec)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern // set by the ServeMux on this same request
		if route == "" {
			route = "unmatched"
		}
		hist.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushes and deadlines for file downloads).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
