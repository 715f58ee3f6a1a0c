package main

import (
	"net"
	"net/http"
	"time"

	"parley/internal/cluster"
	"parley/internal/store"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (no global state), served at /metrics.
type metrics struct {
	registry      *prometheus.Registry
	messages      *prometheus.CounterVec
	deliveries    prometheus.Counter
	slowConsumers prometheus.Counter
	rateLimited   *prometheus.CounterVec
	commitSeconds prometheus.Histogram
	commitBatch   prometheus.Histogram
	commitErrors  prometheus.Counter
	delivery      prometheus.Histogram   // commit to the last member's socket, sampled
	signIns       *prometheus.CounterVec // by method and outcome
	closes        *prometheus.CounterVec // WebSocket connections closed, by code and side
	pushes        *prometheus.CounterVec
}

// newMetrics makes the counters; watch adds the gauges that read a
// running server.
func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_messages_total", Help: "Messages committed to the database, by kind (room or direct).",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_deliveries_total", Help: "Message frames queued to connections (one per receiving connection).",
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_slow_consumers_disconnected_total", Help: "Connections closed because their send buffer filled.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rate_limited_total", Help: "Requests refused with rate_limited, by limit.",
		}, []string{"limit"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_store_commit_seconds", Help: "Time to commit one batch of commands, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. ~3.3s
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_store_commit_batch_messages", Help: "Commands per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_store_commit_errors_total", Help: "Commits that failed (disk full, I/O errors).",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_push_notifications_total",
			Help: "Web Push notifications, by result: sent, gone (the subscription ended), failed, dropped (the queue was full).",
		}, []string{"result"}),
	}
	for _, result := range []string{"sent", "gone", "failed", "dropped"} {
		m.pushes.WithLabelValues(result)
	}
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "parley_delivery_seconds",
		Help: "Time from a message's commit to its frame's write to the last member's socket (one message in " +
			"deliverySample measured).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
	})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_sign_ins_total", Help: "Sign-in attempts by method (password, token, reset, guest) and outcome.",
	}, []string{"method", "outcome"})
	m.closes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_websocket_closes_total",
		Help: "WebSocket connections closed, by close code (1006: no close frame) and by who closed (server or client).",
	}, []string{"code", "by"})
	for _, kind := range []string{"room", "direct"} {
		m.messages.WithLabelValues(kind)
	}
	for _, limit := range []string{"messages", "frames", "login", "signup", "rooms", "user_messages", "searches", "sign_ins", "guests", "hooks"} {
		m.rateLimited.WithLabelValues(limit)
	}
	version, commit, goVersion, _ := buildInfo()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_build_info", Help: "The running build: always 1, with its version and commit as labels.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	})
	build.Set(1)
	m.registry.MustRegister(
		build, m.messages, m.deliveries, m.slowConsumers, m.rateLimited, m.commitSeconds, m.commitBatch, m.commitErrors,
		m.delivery, m.signIns, m.closes, m.pushes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// watchCluster registers what a cluster node shows: where it stands in
// the log, its NATS connection, and how long publishing takes.
func (m *metrics) watchCluster(node *cluster.Node, log *cluster.Log) {
	publish := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "parley_cluster_publish_seconds", Help: "Time from publishing a batch of commands to the cluster log to its acknowledgement by a quorum.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	log.ObservePublish = func(d time.Duration) { publish.Observe(d.Seconds()) }
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.registry.MustRegister(publish,
		gauge("parley_cluster_applied_seq", "Position in the cluster log of the last entry this node applied.",
			func() float64 { return float64(log.Applied()) }),
		gauge("parley_cluster_lag", "Entries of the cluster log (each a command or a batch of them) this node has yet to apply.",
			func() float64 { return float64(log.Lag()) }),
		gauge("parley_cluster_nats_connected", "1 while this node's NATS connection is up.", func() float64 {
			if node.Connected() {
				return 1
			}
			return 0
		}),
	)
}

// watch registers the gauges that read the server's hub and store.
func (m *metrics) watch(hub *Hub, st *store.Store) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.registry.MustRegister(
		gauge("parley_connections", "Open WebSocket connections.", func() float64 { return float64(hub.Count()) }),
		gauge("parley_users_online", "Signed-in users with at least one connection.", func() float64 { return float64(hub.OnlineCount()) }),
		gauge("parley_rooms", "Rooms in the database.", func() float64 { return float64(st.RoomCount()) }),
		gauge("parley_db_size_bytes", "Size of the database file.", func() float64 { return float64(st.Size()) }),
		gauge("parley_uploads", "Uploaded files kept in the database.", func() float64 { n, _ := st.UploadTotals(); return float64(n) }),
		gauge("parley_uploads_bytes", "Bytes of uploaded files kept in the database.", func() float64 { _, b := st.UploadTotals(); return float64(b) }),
	)
}

// observeBatch records one applied batch. The bus calls it before the
// batch's events are delivered, so a client that sees its acknowledgement
// sees the counters already moved.
func (m *metrics) observeBatch(b store.Batch) {
	if b.Err != nil {
		m.commitErrors.Inc()
		return
	}
	m.commitSeconds.Observe(b.Took.Seconds())
	m.commitBatch.Observe(float64(len(b.Applied)))
	for _, ap := range b.Applied {
		if ap.Outcome.Err != nil {
			continue
		}
		if _, ok := ap.Env.Cmd.(store.PostMessage); !ok {
			continue
		}
		if ap.Outcome.Message.IsDirect() {
			m.messages.WithLabelValues("direct").Inc()
		} else {
			m.messages.WithLabelValues("room").Inc()
		}
	}
}

// handler serves /metrics to the addresses in metrics.allow. A request
// with forwarding headers came through a proxy, whose own address (say
// loopback) says nothing of the client's: from a proxy not in
// server.trusted_proxies it is refused; from a trusted one, the client
// address it forwards (clientIP) is what is checked.
func (m *metrics) handler(allow []*net.IPNet, trusted func(ip string) bool, clientIP func(*http.Request) string) http.Handler {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Real-IP") != "" {
			if err != nil || !trusted(host) {
				http.Error(w, "metrics are not served through a proxy that is not in server.trusted_proxies", http.StatusForbidden)
				return
			}
			host = clientIP(r)
		}
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !containsIP(allow, ip) {
			http.Error(w, "metrics are not served to your address (metrics.allow)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func containsIP(nets []*net.IPNet, ip net.IP) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
