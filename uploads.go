package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"parley/internal/auth"
	"parley/internal/store"
)

// Uploads: files and images go over HTTP, not the WebSocket, then a chat
// or private frame attaches them by id. A file's id is 128 random bits and
// its URL is the capability to read it, as with links in other chat apps.
// Nothing uploaded is ever served as something a browser would run.

// inlineImageTypes are shown inline and previewed: raster formats a
// browser decodes without running anything. SVG is deliberately absent.
var inlineImageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// servedType maps a file's bytes to the type it is served with; anything
// not listed is served as application/octet-stream, as an attachment.
// Text that starts like markup (an SVG image, or HTML the sniffer does
// not recognise) is not plain text: a browser told otherwise, or a user
// saving it, could run it.
func servedType(data []byte) string {
	mediaType, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	switch {
	case inlineImageTypes[mediaType]:
		return mediaType
	case mediaType == "text/plain" && looksLikeMarkup(data):
		return "application/octet-stream"
	case mediaType == "text/plain":
		return "text/plain"
	case mediaType == "application/pdf", mediaType == "application/zip", mediaType == "application/x-gzip":
		return mediaType
	case strings.HasPrefix(mediaType, "audio/"), strings.HasPrefix(mediaType, "video/"):
		return mediaType
	}
	return "application/octet-stream"
}

// looksLikeMarkup reports text whose first character, after a byte
// order mark and white space, opens a tag.
func looksLikeMarkup(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n\f")
	return len(data) > 0 && data[0] == '<'
}

// maxConcurrentUploads bounds the memory uploads hold at once; one user
// holds at most uploadsPerUser of them, so nobody can take them all.
// Further uploads wait their turn, for at most uploadSlotWait.
const (
	maxConcurrentUploads = 4
	uploadsPerUser       = 1
	uploadSlotWait       = 2 * time.Minute
)

// uploadSlackBytes is how far ahead of uploads.min_bytes_per_second a body
// may fall before it is cut off: time for the connection to get going.
const uploadSlackBytes = 64 << 10

// maxFileNameBytes bounds a stored file name.
const maxFileNameBytes = 200

// cleanFileName keeps the last path element of a client's file name,
// without control characters, and bounded.
func cleanFileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > maxFileNameBytes {
		_, size := lastRune(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == "/" {
		return "file"
	}
	return name
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, 1
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorData{Code: code, Message: msg})
}

// uploads serves POST /upload and GET /files/.
type uploads struct {
	cfg     UploadsConfig
	store   *store.Store
	bus     *bus
	now     func() time.Time
	log     *slog.Logger
	slots   chan struct{} // uploads being received, at most maxConcurrentUploads
	perUser *keyedSlots   // of those, each user's, at most uploadsPerUser
	// blobs keeps files' bytes outside the database: a cluster's object
	// store, which every node reads. nil: in the database.
	blobs fileBlobs
}

// fileBlobs is where a cluster keeps uploaded bytes.
type fileBlobs interface {
	Put(ctx context.Context, id string, data []byte) error
	Open(ctx context.Context, id string) (io.ReadCloser, error)
}

func newUploads(cfg UploadsConfig, st *store.Store, b *bus, now func() time.Time, log *slog.Logger) *uploads {
	return &uploads{cfg: cfg, store: st, bus: b, now: now, log: log, slots: make(chan struct{}, maxConcurrentUploads),
		perUser: &keyedSlots{n: uploadsPerUser, keys: map[uint64]*slotQueue{}}}
}

// handleUpload stores a file sent as the request body, for the user whose
// sign-in token is in "Authorization: Bearer TOKEN". The file name comes
// from the name query parameter.
//
// What a client can hold is bounded before any of the body is read: a
// declared length over the limit is refused at once, the user's slot and
// then a server-wide slot are taken (waiting in line for them), and the
// body must keep arriving at uploads.min_bytes_per_second or the
// connection is cut, so a trickle cannot keep a slot.
func (s *uploads) handleUpload(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeJSONError(w, http.StatusUnauthorized, codeUnauthenticated, "Send your sign-in token as Authorization: Bearer TOKEN")
		return
	}
	user, _, err := s.store.TokenUser(auth.HashToken(token), s.now())
	if err != nil {
		writeJSONError(w, http.StatusUnauthorized, codeAuthFailed, "Session expired or signed out; sign in again")
		return
	}
	limit := s.cfg.MaxBytes
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeJSONError(w, http.StatusRequestEntityTooLarge, codeLimitReached, "The file is larger than "+formatBytes(limit))
		return
	}
	raw := r.URL.Query().Get("name")
	if strings.ContainsFunc(raw, refusedRune) {
		writeJSONError(w, http.StatusBadRequest, codeBadRequest, "The file name holds control characters or bidi overrides; rename the file")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), uploadSlotWait)
	defer cancel()
	release, err := s.perUser.acquire(ctx, user.ID)
	if err != nil {
		s.busy(w, r)
		return
	}
	defer release()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		s.busy(w, r)
		return
	}
	body := &minRateReader{r: r.Body, rc: http.NewResponseController(w), start: time.Now(), rate: s.cfg.MinBytesPerSecond}
	data, err := io.ReadAll(http.MaxBytesReader(w, io.NopCloser(body), limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSONError(w, http.StatusRequestEntityTooLarge, codeLimitReached, "The file is larger than "+formatBytes(limit))
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Info("upload cut off: too slow", "user", user.Name, "bytes", body.n, "took", time.Since(body.start).Round(time.Millisecond))
		w.Header().Set("Connection", "close")
		writeJSONError(w, http.StatusRequestTimeout, codeRateLimited,
			"The upload arrived too slowly (less than "+formatBytes(s.cfg.MinBytesPerSecond)+" a second)")
		return
	case err != nil:
		writeJSONError(w, http.StatusBadRequest, codeBadRequest, "The upload did not arrive whole")
		return
	case len(data) == 0:
		writeJSONError(w, http.StatusBadRequest, codeBadRequest, "The file is empty")
		return
	}
	name := cleanFileName(raw)
	id := make([]byte, 16)
	rand.Read(id) // 128 bits: the id is also the capability to fetch the file
	cmd := store.PutFile{FileID: hex.EncodeToString(id), Owner: user.ID, Name: name,
		ContentType: servedType(data), Data: data,
		Quota: store.UploadQuota{PerUser: s.cfg.UserQuotaBytes, Total: s.cfg.TotalBytes}}
	if s.blobs != nil {
		// The bytes go to the cluster's object store; the log carries the
		// rest. Bytes whose command is refused are swept away later.
		if err := s.blobs.Put(r.Context(), cmd.FileID, data); err != nil {
			s.log.Error("store upload in the cluster", "user", user.Name, "err", err)
			writeJSONError(w, http.StatusServiceUnavailable, codeStoreUnavailable, "The server could not save this; try again")
			return
		}
		cmd.Data, cmd.ExternalSize = nil, int64(len(data))
	}
	out, err := s.bus.Do(r.Context(), "", cmd)
	f := out.File
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		writeJSONError(w, http.StatusRequestEntityTooLarge, codeLimitReached,
			"No room for this file: your uploads may total "+formatBytes(s.cfg.UserQuotaBytes)+", and the server's are capped too")
		return
	case err != nil:
		if !isStoreDown(err) {
			s.log.Error("store upload", "user", user.Name, "err", err)
		}
		writeJSONError(w, http.StatusServiceUnavailable, codeStoreUnavailable, "The server could not save this; try again")
		return
	}
	s.log.Info("file uploaded", "user", user.Name, "file", f.ID, "bytes", f.Size, "type", f.ContentType)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(toFileInfo(f.FileRef))
}

// busy answers an upload that waited too long for its turn.
func (s *uploads) busy(w http.ResponseWriter, r *http.Request) {
	if r.Context().Err() != nil {
		return // the client left
	}
	w.Header().Set("Retry-After", "10")
	w.Header().Set("Connection", "close")
	writeJSONError(w, http.StatusServiceUnavailable, codeRateLimited, "The server is busy with other uploads; try again shortly")
}

// minRateReader reads a request body that must arrive at rate bytes a
// second on average, after uploadSlackBytes of slack: before each read it
// sets the connection's read deadline to when the bytes read so far, plus
// the slack, were due. Only sending more buys more time.
type minRateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	rate  int64 // bytes a second; 0 for no minimum
	n     int64 // bytes read so far
}

func (m *minRateReader) Read(p []byte) (int, error) {
	if m.rate > 0 {
		due := time.Duration(float64(m.n+uploadSlackBytes) / float64(m.rate) * float64(time.Second))
		_ = m.rc.SetReadDeadline(m.start.Add(due))
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	return n, err
}

// keyedSlots lends at most n slots per key at once; callers beyond that
// wait in line.
type keyedSlots struct {
	n int

	mu   sync.Mutex // guards keys
	keys map[uint64]*slotQueue
}

// slotQueue is one key's slots and how many hold or wait for one.
type slotQueue struct {
	slots chan struct{}
	users int
}

// acquire takes one of key's slots, waiting until one is free or ctx
// ends, and returns its release.
func (k *keyedSlots) acquire(ctx context.Context, key uint64) (func(), error) {
	k.mu.Lock()
	q := k.keys[key]
	if q == nil {
		q = &slotQueue{slots: make(chan struct{}, k.n)}
		k.keys[key] = q
	}
	q.users++
	k.mu.Unlock()
	done := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if q.users--; q.users == 0 {
			delete(k.keys, key)
		}
	}
	select {
	case q.slots <- struct{}{}:
		return func() { <-q.slots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// handleFile serves an uploaded file so that it can never run in the
// page's origin: a fixed safe type, nosniff, a sandboxing CSP, and
// "attachment" for everything but raster images and plain text.
func (s *uploads) handleFile(w http.ResponseWriter, r *http.Request) {
	f, err := s.store.File(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	ctype := f.ContentType
	if ctype == "text/plain" {
		ctype += "; charset=utf-8"
	}
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	disposition := "attachment"
	if inlineImageTypes[f.ContentType] || f.ContentType == "text/plain" {
		disposition = "inline"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": f.Name}))
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	if r.Method == http.MethodHead {
		return
	}
	if f.External {
		if s.blobs == nil {
			s.log.Error("serve file: its bytes are kept in a cluster, and this server is not a node of one", "file", f.ID)
			return
		}
		body, err := s.blobs.Open(r.Context(), f.ID)
		if err != nil {
			s.log.Warn("serve file", "file", f.ID, "err", err)
			return // the short body tells the client
		}
		defer body.Close()
		if _, err := io.Copy(w, body); err != nil {
			s.log.Debug("serve file", "file", f.ID, "err", err)
		}
		return
	}
	for i := range f.Chunks() {
		chunk, err := s.store.FileChunk(f.ID, i)
		if err != nil {
			s.log.Warn("serve file", "file", f.ID, "chunk", i, "err", err)
			return // the short body tells the client
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', -1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', -1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
