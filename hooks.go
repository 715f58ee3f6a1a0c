package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// Incoming webhooks: POST /hooks/TOKEN posts one message into the hook's
// room as its bot. The token is a secret shown once when the hook is
// made; the server keeps its hash. Each hook has the allowance of one
// chat connection (limits.messages_per_second, bursts of limits.burst),
// taken before the body is read; bodies are at most limits.frame_bytes.

type hooks struct {
	store    *store.Store
	bus      *bus
	limits   LimitsConfig
	keep     int           // history.per_room
	perHook  *auth.Limiter // messages per hook id
	badByIP  *auth.Limiter // unknown hook tokens per client address
	clientIP func(*http.Request) string
	log      *slog.Logger
	metrics  *metrics
}

func newHooks(st *store.Store, b *bus, limits LimitsConfig, keep int, window time.Duration, clientIP func(*http.Request) string,
	log *slog.Logger, m *metrics) *hooks {
	return &hooks{store: st, bus: b, limits: limits, keep: keep, clientIP: clientIP, log: log.With("component", "hooks"), metrics: m,
		perHook: perSecondLimiter(limits.MessagesPerSecond, limits.Burst),
		badByIP: auth.NewLimiter(failedTokensPerIP, window)}
}

// hookReply is every answer of POST /hooks/TOKEN.
type hookReply struct {
	OK         bool    `json:"ok"`
	ID         string  `json:"id,omitempty"` // the message's
	Code       string  `json:"code,omitempty"`
	Error      string  `json:"error,omitempty"`
	RetryAfter float64 `json:"retryAfter,omitempty"`
}

func writeHook(w http.ResponseWriter, status int, r hookReply) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if r.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.RetryAfter+0.999)))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(r)
}

func (h *hooks) handlePost(w http.ResponseWriter, r *http.Request) {
	ip := h.clientIP(r)
	token := r.PathValue("token")
	hook, err := h.store.HookByHash(auth.HashToken(token))
	if errors.Is(err, store.ErrNotFound) || len(token) > 128 {
		if _, ok, wait := h.badByIP.Reserve(ip); !ok {
			h.metrics.rateLimited.WithLabelValues("hooks").Inc()
			writeHook(w, http.StatusTooManyRequests, hookReply{Code: codeRateLimited, Error: "too many unknown hooks from your address", RetryAfter: retryAfterSeconds(wait)})
			return
		}
		writeHook(w, http.StatusNotFound, hookReply{Code: codeNotFound, Error: "no such hook (revoked, or a mistyped URL)"})
		return
	} else if err != nil {
		writeHook(w, http.StatusServiceUnavailable, hookReply{Code: codeStoreUnavailable, Error: "try again"})
		return
	}
	// The allowance is taken before the body is read, so a flood costs
	// one lookup per request.
	if _, ok, wait := h.perHook.Reserve(hook.ID); !ok {
		h.metrics.rateLimited.WithLabelValues("hooks").Inc()
		writeHook(w, http.StatusTooManyRequests, hookReply{Code: codeRateLimited, Error: "too many messages from this hook; slow down", RetryAfter: retryAfterSeconds(wait)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.limits.FrameBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeHook(w, http.StatusRequestEntityTooLarge, hookReply{Code: codeInvalidContent, Error: "the body is larger than " + strconv.FormatInt(h.limits.FrameBytes, 10) + " bytes"})
		return
	case err != nil:
		writeHook(w, http.StatusBadRequest, hookReply{Code: codeBadRequest, Error: "could not read the body"})
		return
	}
	// Slack's clients may send the JSON form-encoded, as payload=...
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("payload") != "" {
			body = []byte(form.Get("payload"))
		}
	}
	text, label, raw, err := hookMessage(body)
	if err != nil {
		writeHook(w, http.StatusBadRequest, hookReply{Code: codeBadRequest, Error: err.Error()})
		return
	}
	if raw {
		if perr := checkContent(text, h.limits.MessageChars); perr != nil {
			writeHook(w, http.StatusBadRequest, hookReply{Code: perr.Code, Error: perr.Message})
			return
		}
	} else if text = cleanText(text, h.limits.MessageChars); text == "" {
		writeHook(w, http.StatusBadRequest, hookReply{Code: codeInvalidContent, Error: "nothing to post"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), handlerTimeout)
	defer cancel()
	out, err := h.bus.Do(ctx, "", store.PostMessage{RoomID: hook.RoomID, SenderID: hook.BotID, Content: text,
		Label: cleanLabel(label), Keep: h.keep})
	var muted *store.MutedError
	switch {
	case errors.As(err, &muted):
		writeHook(w, http.StatusForbidden, hookReply{Code: codeMuted, Error: "the hook's bot is muted in " + hook.RoomID})
	case errors.Is(err, store.ErrNotMember), errors.Is(err, store.ErrRoomNotFound), errors.Is(err, store.ErrNotFound):
		writeHook(w, http.StatusForbidden, hookReply{Code: codeNotMember, Error: "the hook's bot is no longer in " + hook.RoomID})
	case errors.Is(err, store.ErrUnconfirmed):
		// A retry could post it twice.
		writeHook(w, http.StatusServiceUnavailable, hookReply{Code: codeUnconfirmed, Error: "the server did not confirm the post in time; it may still appear, so check the room before trying again"})
	case err != nil:
		if !isStoreDown(err) {
			h.log.Error("hook post failed", "hook", hook.ID, "err", err)
		}
		writeHook(w, http.StatusServiceUnavailable, hookReply{Code: codeStoreUnavailable, Error: "nothing was posted; try again"})
	default:
		writeHook(w, http.StatusOK, hookReply{OK: true, ID: formatMessageID(out.Message.Seq)})
	}
}
