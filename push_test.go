package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"parley/internal/store"
)

// A push service on loopback, for the tests: it checks each request's
// VAPID signature (RFC 8292) and decrypts its body (RFC 8291, RFC 8188)
// with the subscription's private key, as a browser would, independently
// of the library the server encrypts with.

type pushDevice struct {
	key      *ecdh.PrivateKey
	auth     []byte
	endpoint string
}

type pushReceived struct {
	path    string
	payload pushPayload
	err     error
}

type pushService struct {
	t       *testing.T
	srv     *httptest.Server
	devices map[string]*pushDevice // by path
	got     chan pushReceived
	vapid   string // the server's public key, as authenticated tells it
}

func newPushService(t *testing.T) *pushService {
	ps := &pushService{t: t, devices: map[string]*pushDevice{}, got: make(chan pushReceived, 64)}
	ps.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := ps.devices[r.URL.Path]
		if d == nil || strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(http.StatusGone)
			ps.got <- pushReceived{path: r.URL.Path, err: errors.New("gone")}
			return
		}
		got := pushReceived{path: r.URL.Path}
		if err := ps.checkVAPID(r, d.endpoint); err != nil {
			got.err = err
		} else if plain, err := d.decrypt(body); err != nil {
			got.err = err
		} else if err := json.Unmarshal(plain, &got.payload); err != nil {
			got.err = fmt.Errorf("payload %q: %w", plain, err)
		}
		if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
			got.err = fmt.Errorf("headers: Content-Encoding %q, TTL %q", r.Header.Get("Content-Encoding"), r.Header.Get("TTL"))
		}
		w.WriteHeader(http.StatusCreated)
		ps.got <- got
	}))
	t.Cleanup(ps.srv.Close)
	return ps
}

// device makes a subscription's keys, as a browser's PushManager does.
func (ps *pushService) device(path string) (*pushDevice, map[string]any) {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		ps.t.Fatal(err)
	}
	d := &pushDevice{key: key, auth: make([]byte, 16), endpoint: ps.srv.URL + path}
	rand.Read(d.auth)
	ps.devices[path] = d
	return d, map[string]any{"endpoint": d.endpoint, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(d.auth)}}
}

// decrypt undoes RFC 8291's aes128gcm encoding with the device's keys.
func (d *pushDevice) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body too short")
	}
	salt, idlen := body[:16], int(body[20])
	rs := binary.BigEndian.Uint32(body[16:20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("key id of %d bytes", idlen)
	}
	asPublic, ciphertext := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ciphertext)) > rs {
		return nil, errors.New("more than one record")
	}
	peer, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, err
	}
	secret, err := d.key.ECDH(peer)
	if err != nil {
		return nil, err
	}
	keyInfo := append(append([]byte("WebPush: info\x00"), d.key.PublicKey().Bytes()...), asPublic...)
	ikm, err := hkdf.Key(sha256.New, secret, d.auth, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

// checkVAPID verifies the Authorization header: a JWT for the endpoint's
// origin, signed (ES256) by the key the server told its clients.
func (ps *pushService) checkVAPID(r *http.Request, endpoint string) error {
	auth := r.Header.Get("Authorization")
	var jwt, k string
	for _, part := range strings.Split(strings.TrimPrefix(auth, "vapid "), ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			jwt = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	if !strings.HasPrefix(auth, "vapid ") || jwt == "" || k == "" {
		return fmt.Errorf("authorization %q", auth)
	}
	if ps.vapid != "" && strings.TrimRight(k, "=") != strings.TrimRight(ps.vapid, "=") {
		return fmt.Errorf("signed with %s, but clients were given %s", k, ps.vapid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
	if err != nil {
		return err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(ecdhCurve(), raw)
	if err != nil {
		return err
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("bad signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("VAPID signature does not verify")
	}
	claimsJSON, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claimsJSON, &claims); err != nil {
		return err
	}
	if !strings.HasPrefix(endpoint, claims.Aud) || claims.Sub == "" || time.Until(time.Unix(claims.Exp, 0)) > 24*time.Hour ||
		time.Unix(claims.Exp, 0).Before(time.Now()) {
		return fmt.Errorf("claims %+v for %s", claims, endpoint)
	}
	return nil
}

// next waits for the next notification, which must be well formed.
func (ps *pushService) next() pushReceived {
	ps.t.Helper()
	select {
	case got := <-ps.got:
		if got.err != nil && !strings.HasSuffix(got.path, "/gone") {
			ps.t.Fatalf("push to %s: %v", got.path, got.err)
		}
		return got
	case <-time.After(frameWait):
		ps.t.Fatal("no push within", frameWait)
	}
	return pushReceived{}
}

// expect waits for a notification whose body is body, failing on any
// other first.
func (ps *pushService) expect(body string) pushPayload {
	ps.t.Helper()
	got := ps.next()
	if got.payload.Body != body {
		ps.t.Fatalf("push %+v, want body %q", got.payload, body)
	}
	return got.payload
}

func startPushServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return startServerWith(t, &cfg, func(s *server) { s.push.allowLocal() })
}

// TestPush: a device subscribed for Web Push gets direct messages and
// mentions while its user is away, encrypted to its keys and signed with
// the server's VAPID key; per room, all messages or none; a subscription
// the push service says is gone, and one whose device signed out, is
// removed.
func TestPush(t *testing.T) {
	ps := newPushService(t)
	cfg := testConfig(t.TempDir())
	cfg.Push.IdleAfter = 2 * time.Second
	ts := startPushServer(t, cfg)
	alice, aliceA := signedIn(t, ts, "alice")
	alice.join("general")
	bob, bobA := signedIn(t, ts, "bob")
	if bobA.VAPIDPublicKey == "" || bobA.VAPIDPublicKey != aliceA.VAPIDPublicKey {
		t.Fatalf("vapidPublicKey %q", bobA.VAPIDPublicKey)
	}
	ps.vapid = bobA.VAPIDPublicKey
	bob.join("general")
	_, sub := ps.device("/push/bob-phone")
	bob.send("pushSubscribe", sub)
	bob.await("pushSubscribed")
	bob.send("pushSubscribe", map[string]any{"endpoint": "https://push.example/x", "keys": map[string]string{"p256dh": "AAAA", "auth": "AAAA"}})
	bob.awaitError(codeBadRequest)

	t.Run("not while active", func(t *testing.T) {
		bob.send("rooms", nil)
		bob.await("rooms")
		alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "are you there?"})
		bob.awaitMessage("are you there?")
	})
	t.Run("when idle", func(t *testing.T) {
		time.Sleep(cfg.Push.IdleAfter + 200*time.Millisecond)
		alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "still there?"})
		p := ps.expect("still there?") // the active one above was not pushed
		if p.Title != "alice" || p.Sender != "alice" || p.WithUserID != aliceA.UserID || p.RoomID != "" {
			t.Fatalf("payload %+v", p)
		}
	})

	bob.send("setNotify", map[string]string{"roomId": "general", "level": "all"})
	bob.await("notifyUpdated")
	leave(t, ts, bob, bobA.UserID)
	say := func(content string) {
		alice.send("chat", map[string]string{"roomId": "general", "content": content})
		alice.awaitMessage(content)
	}

	t.Run("offline: every message of a room set to all", func(t *testing.T) {
		say("lunch at noon, " + strings.Repeat("very ", 40) + "long")
		p := ps.next().payload
		if p.Title != "alice in #general" || p.RoomID != "general" || p.MessageID == "" ||
			!strings.HasPrefix(p.Body, "lunch at noon") || !strings.HasSuffix(p.Body, "…") || len([]rune(p.Body)) != pushExcerptChars {
			t.Fatalf("payload %+v", p)
		}
	})
	t.Run("mentions only, by default", func(t *testing.T) {
		again := dial(t, ts.WSURL())
		again.send("auth", map[string]string{"token": bobA.Token})
		again.await("authenticated")
		again.send("setNotify", map[string]string{"roomId": "general", "level": "mentions"})
		again.await("notifyUpdated")
		leave(t, ts, again, bobA.UserID)
		say("nothing for bob here")
		say("@bob have a look")
		ps.expect("@bob have a look")
	})
	t.Run("nothing", func(t *testing.T) {
		again := dial(t, ts.WSURL())
		again.send("auth", map[string]string{"token": bobA.Token})
		var a authenticatedData
		decodeInto(t, again.await("authenticated"), &a)
		again.send("setNotify", map[string]string{"roomId": "general", "level": "nothing"})
		again.await("notifyUpdated")
		leave(t, ts, again, bobA.UserID)
		say("@bob you will not hear of this")
		alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "but of this"})
		ps.expect("but of this")
	})
	t.Run("gone subscriptions are removed", func(t *testing.T) {
		again := dial(t, ts.WSURL())
		again.send("auth", map[string]string{"token": bobA.Token})
		again.await("authenticated")
		_, gone := ps.device("/push/bob-old/gone")
		again.send("pushSubscribe", gone)
		again.await("pushSubscribed")
		leave(t, ts, again, bobA.UserID)
		alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "two devices"})
		seen := map[string]bool{}
		for range 2 {
			seen[ps.next().path] = true
		}
		if !seen["/push/bob-old/gone"] || !seen["/push/bob-phone"] {
			t.Fatalf("pushed to %v", seen)
		}
		waitFor(t, "the gone subscription is removed", func() bool { return len(pushSubs(t, ts, bobA.UserID)) == 1 })
	})
	t.Run("signing out on the device removes its subscription", func(t *testing.T) {
		again := dial(t, ts.WSURL())
		again.send("auth", map[string]string{"token": bobA.Token})
		again.await("authenticated")
		again.send("logout", nil)
		again.await("loggedOut")
		if subs := pushSubs(t, ts, bobA.UserID); len(subs) != 0 {
			t.Fatalf("subscriptions after signing out: %+v", subs)
		}
	})
}

// TestPush_NoPreview: with push.preview off, a notification says only
// "New message": no sender, no room, no text.
func TestPush_NoPreview(t *testing.T) {
	ps := newPushService(t)
	cfg := testConfig(t.TempDir())
	cfg.Push.Preview = false
	ts := startPushServer(t, cfg)
	alice, _ := signedIn(t, ts, "alice")
	bob, bobA := signedIn(t, ts, "bob")
	ps.vapid = bobA.VAPIDPublicKey
	_, sub := ps.device("/push/bob")
	bob.send("pushSubscribe", sub)
	bob.await("pushSubscribed")
	leave(t, ts, bob, bobA.UserID)
	alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "a secret"})
	p := ps.expect("New message")
	if p.Title != "New message" || p.Sender != "" || p.WithUserID != "" || p.RoomID != "" || p.MessageID != "" {
		t.Fatalf("payload without preview: %+v", p)
	}
}

func pushSubs(t *testing.T, ts *testServer, userID string) []store.PushSubscription {
	t.Helper()
	id, _ := parseUserID(userID)
	targets, err := ts.srv.store.PushTargets("", []uint64{id}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) == 0 {
		return nil
	}
	return append(targets[0].Subs, targets[0].Stale...)
}

// leave closes a user's connection and waits until the server has seen
// them go.
func leave(t *testing.T, ts *testServer, c *wsClient, userID string) {
	t.Helper()
	c.conn.Close()
	id, _ := parseUserID(userID)
	waitFor(t, "the server sees the user offline", func() bool { return !ts.srv.hub.Online(id) })
}

func ecdhCurve() elliptic.Curve { return elliptic.P256() }
