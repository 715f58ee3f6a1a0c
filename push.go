package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"parley/internal/store"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// Web Push: a notification to the devices of people who are away (no
// connection open, or idle past push.idle_after), for direct messages and
// @mentions, or per room every message or none. Messages are encrypted to
// each device's keys (RFC 8291) and signed with the server's VAPID key
// (RFC 8292), which the push service checks; the push service sees no
// text. Sending is a side effect of MessagePosted events: the bus hands
// this node's batches to the pusher, whose workers read the store and
// call the push services, never holding up delivery.

// pushQueue bounds the messages waiting to be pushed; past it, new ones
// are dropped (and counted), never waited for.
const pushQueue = 1024

// pushWorkers is how many messages are pushed at once.
const pushWorkers = 2

// pushTTL is how long a push service keeps a notification for a device
// that is off, in seconds.
const pushTTL = 24 * 60 * 60

// pushExcerptChars bounds the text a notification shows.
const pushExcerptChars = 120

// maxPushSubscriptions is how many devices one user may have subscribed;
// a new one past it replaces the oldest.
const maxPushSubscriptions = 10

// pushTimeout bounds one request to a push service.
const pushTimeout = 15 * time.Second

type pusher struct {
	store   *store.Store
	bus     *bus
	hub     *Hub
	cfg     PushConfig
	subject string
	public  string // the VAPID key pair
	private string
	client  *http.Client
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	local  bool // tests: endpoints on loopback over plain HTTP are allowed
	queue  chan store.Message
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	activeMu sync.Mutex           // guards active
	active   map[uint64]time.Time // when each user last sent a frame here
}

// pushPayload is what a notification carries, as JSON, encrypted.
type pushPayload struct {
	Title      string `json:"title"`
	Body       string `json:"body"`
	Sender     string `json:"sender,omitempty"`
	RoomID     string `json:"roomId,omitempty"`
	WithUserID string `json:"withUserId,omitempty"` // a direct message: its sender
	MessageID  string `json:"messageId,omitempty"`
	Tag        string `json:"tag"` // one notification per conversation on the device
}

// newPusher makes the pusher; give it the bus, which hands it batches,
// then start it.
func newPusher(cfg PushConfig, publicURL string, st *store.Store, hub *Hub, logger *slog.Logger, m *metrics,
	now func() time.Time) *pusher {
	subject := cfg.Subject
	if subject == "" {
		subject = "mailto:parley@localhost"
		if strings.HasPrefix(publicURL, "https://") {
			subject = publicURL
		}
	}
	p := &pusher{store: st, hub: hub, cfg: cfg, subject: strings.TrimPrefix(subject, "mailto:"),
		log: logger.With("component", "push"), metrics: m, now: now, queue: make(chan store.Message, pushQueue),
		active: map[uint64]time.Time{}, client: pushClient(false)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// start loads the server's VAPID key pair, making it once (through a
// command, so every node of a cluster has the same pair), and starts the
// workers. Close stops them.
func (p *pusher) start(ctx context.Context) error {
	pub, priv, err := p.store.VAPIDKeys()
	if errors.Is(err, store.ErrNotFound) {
		if priv, pub, err = webpush.GenerateVAPIDKeys(); err != nil {
			return fmt.Errorf("make the Web Push key pair: %w", err)
		}
		if _, err := p.bus.Do(ctx, "", store.SetVAPIDKeys{Public: pub, Private: priv}); err != nil {
			return fmt.Errorf("store the Web Push key pair: %w", err)
		}
		pub, priv, err = p.store.VAPIDKeys() // another node's may have come first
	}
	if err != nil {
		return fmt.Errorf("read the Web Push key pair: %w", err)
	}
	p.public, p.private = pub, priv
	for range pushWorkers {
		p.wg.Add(1)
		go p.work()
	}
	return nil
}

// pushClient is the HTTP client for push services. A subscription's
// endpoint is a URL a user gave, so requests go only to public addresses
// over HTTPS (the server's own network is off limits) and never follow a
// redirect; allowLocal lifts that for tests with a push service on
// loopback.
func pushClient(allowLocal bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || (!allowLocal && !publicIP(ip)) {
			return fmt.Errorf("push endpoint address %s is not public", host)
		}
		return nil
	}}
	return &http.Client{
		Timeout:       pushTimeout,
		Transport:     &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func publicIP(ip net.IP) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// publicKey is the server's VAPID public key, for clients.
func (p *pusher) publicKey() string { return p.public }

// allowLocal lets tests use a push service on loopback over plain HTTP.
func (p *pusher) allowLocal() { p.client, p.local = pushClient(true), true }

// Close stops the workers; what is queued is dropped.
func (p *pusher) Close() {
	p.cancel()
	p.wg.Wait()
}

// seen records that a user sent a frame: they are not idle.
func (p *pusher) seen(userID uint64) {
	now := p.now()
	p.activeMu.Lock()
	p.active[userID] = now
	p.activeMu.Unlock()
}

// away reports whether a user counts as away: no connection here or on
// another node, or (here) no frame for push.idle_after. A user connected
// only to another node is not away: that node knows whether they are idle,
// and this one does not.
func (p *pusher) away(userID uint64) bool {
	here, elsewhere := p.hub.Where(userID)
	switch {
	case elsewhere && !here:
		return false
	case !here:
		p.activeMu.Lock()
		delete(p.active, userID)
		p.activeMu.Unlock()
		return true
	case p.cfg.IdleAfter <= 0:
		return false
	}
	p.activeMu.Lock()
	last := p.active[userID]
	p.activeMu.Unlock()
	return p.now().Sub(last) >= p.cfg.IdleAfter
}

// deliver queues the messages of a batch that this node proposed: each
// node pushes its own, so a cluster pushes each message once. It never
// blocks the bus.
func (p *pusher) deliver(b store.Batch, mine func(store.Envelope) bool) {
	if b.Err != nil {
		return
	}
	for _, ap := range b.Applied {
		if !mine(ap.Env) {
			continue
		}
		for _, ev := range ap.Events {
			if e, ok := ev.(store.MessagePosted); ok {
				select {
				case p.queue <- e.Message:
				default:
					p.metrics.pushes.WithLabelValues("dropped").Inc()
				}
			}
		}
	}
}

func (p *pusher) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m := <-p.queue:
			p.push(m)
		}
	}
}

// push notifies whoever should hear of m and is away.
func (p *pusher) push(m store.Message) {
	var users []uint64
	if m.IsDirect() {
		users = []uint64{m.TargetID}
	}
	targets, err := p.store.PushTargets(m.RoomID, users, p.now())
	if err != nil {
		p.log.Warn("read push subscriptions", "err", err)
		return
	}
	var payload []byte // made for the first device that gets it: most messages go to none
	for _, t := range targets {
		for _, sub := range t.Stale {
			p.remove(sub) // its device signed out
		}
		if t.User.ID == m.SenderID || len(t.Subs) == 0 || !p.wants(t, m) || !p.away(t.User.ID) {
			continue
		}
		if payload == nil {
			payload = p.payload(m)
		}
		for _, sub := range t.Subs {
			p.send(sub, payload, m)
		}
	}
}

// wants reports whether a target asked to hear of m.
func (p *pusher) wants(t store.PushTarget, m store.Message) bool {
	if m.IsDirect() {
		return true
	}
	switch {
	case !t.Member:
		return false
	case t.Level == store.NotifyAll:
		return true
	case t.Level == store.NotifyNothing:
		return false
	}
	return slices.Contains(m.Mentions, t.User.ID)
}

func (p *pusher) payload(m store.Message) []byte {
	out := pushPayload{Title: "New message", Body: "New message", Tag: "parley"}
	if p.cfg.Preview {
		out = pushPayload{Sender: m.SenderName, MessageID: formatMessageID(m.Seq), Body: excerpt(m)}
		if m.IsDirect() {
			out.Title, out.WithUserID, out.Tag = m.SenderName, formatID(m.SenderID), "dm-"+formatID(m.SenderID)
		} else {
			where := "#" + m.RoomID
			if r, err := p.store.Room(m.RoomID); err == nil && r.Group {
				where = r.Topic
			}
			out.Title, out.RoomID, out.Tag = m.SenderName+" in "+where, m.RoomID, "room-"+m.RoomID
		}
	}
	b, _ := json.Marshal(out)
	return b
}

func excerpt(m store.Message) string {
	text := strings.Join(strings.Fields(m.Content), " ")
	if text == "" && len(m.Files) > 0 {
		return "sent a file"
	}
	if utf8.RuneCountInString(text) > pushExcerptChars {
		text = string([]rune(text)[:pushExcerptChars-1]) + "…"
	}
	return text
}

func (p *pusher) send(sub store.PushSubscription, payload []byte, m store.Message) {
	urgency := webpush.UrgencyNormal
	if m.IsDirect() || slices.Contains(m.Mentions, sub.UserID) {
		urgency = webpush.UrgencyHigh
	}
	resp, err := webpush.SendNotificationWithContext(p.ctx, payload, &webpush.Subscription{Endpoint: sub.Endpoint,
		Keys: webpush.Keys{P256dh: sub.P256dh, Auth: sub.Auth}}, &webpush.Options{HTTPClient: p.client, Subscriber: p.subject,
		VAPIDPublicKey: p.public, VAPIDPrivateKey: p.private, TTL: pushTTL, Urgency: urgency})
	if err != nil {
		if p.ctx.Err() == nil {
			p.metrics.pushes.WithLabelValues("failed").Inc()
			p.log.Info("push failed", "user", sub.UserID, "endpoint", endpointHost(sub.Endpoint), "err", err)
		}
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		// The subscription is over (RFC 8030, section 7.3).
		p.metrics.pushes.WithLabelValues("gone").Inc()
		p.remove(sub)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		p.metrics.pushes.WithLabelValues("sent").Inc()
	default:
		p.metrics.pushes.WithLabelValues("failed").Inc()
		p.log.Info("push refused", "user", sub.UserID, "endpoint", endpointHost(sub.Endpoint), "status", resp.StatusCode)
	}
}

func (p *pusher) remove(sub store.PushSubscription) {
	err := p.bus.Send(p.ctx, "", store.RemovePushSubscription{UserID: sub.UserID, Endpoint: sub.Endpoint}, func(store.Applied) {})
	if err != nil && p.ctx.Err() == nil {
		p.log.Warn("remove a push subscription", "user", sub.UserID, "err", err)
	}
}

// endpointHost names a push service in logs without the subscription's
// secret path.
func endpointHost(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Host
	}
	return "?"
}

// checkSubscription validates what a browser's PushSubscription gives:
// an https endpoint (http on loopback only in tests), a P-256 public key
// and a 16-byte auth secret, in base64url.
func checkSubscription(endpoint, p256dh, authKey string, allowLocal bool) *protoError {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || len(endpoint) > 2048 || u.Host == "" || u.User != nil:
		return errorf(codeBadRequest, "endpoint must be a push service's URL")
	case u.Scheme != "https" && !(allowLocal && u.Scheme == "http"):
		return errorf(codeBadRequest, "endpoint must be an https URL")
	}
	if k, err := decodeKey(p256dh); err != nil || len(k) != 65 || k[0] != 4 {
		return errorf(codeBadRequest, "keys.p256dh must be an uncompressed P-256 public key, base64url")
	}
	if k, err := decodeKey(authKey); err != nil || len(k) != 16 {
		return errorf(codeBadRequest, "keys.auth must be 16 bytes, base64url")
	}
	return nil
}

func decodeKey(s string) ([]byte, error) {
	if len(s) > 200 {
		return nil, errors.New("too long")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
