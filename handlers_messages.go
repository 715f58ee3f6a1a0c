package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"parley/internal/auth"
	"parley/internal/store"
)

// messageHandlers post, read and act on messages.
type messageHandlers struct {
	deps
	limits   LimitsConfig
	keep     int           // history.per_room
	searches *auth.Limiter // searches started per user id
	gate     *searchGate   // searches running
}

// maxFilesPerMessage bounds the attachments of one message.
const maxFilesPerMessage = 10

// maxInFlight is how many of one connection's messages may wait for the
// same group commit. More would let one client put a burst into a single
// commit, which is then fanned out to every member at once and can
// overflow their send buffers.
const maxInFlight = 4

// checkParts validates a message's parts: content (which may be empty
// when files come with it), clientMsgId, reply and file ids.
func (h *messageHandlers) checkParts(content, clientMsgID, replyTo string, files []string) (uint64, *protoError) {
	if err := checkClientMsgID(clientMsgID); err != nil {
		return 0, err
	}
	if len(files) > maxFilesPerMessage {
		return 0, errorf(codeBadRequest, "At most %d files per message", maxFilesPerMessage)
	}
	if len(files) == 0 || content != "" {
		if err := checkContent(content, h.limits.MessageChars); err != nil {
			return 0, err
		}
	}
	return parseMessageID("replyTo", replyTo)
}

// postError turns a refused message into the client's error.
func postError(err error, roomID string) error {
	var muted *store.MutedError
	switch {
	case errors.Is(err, store.ErrParentNotFound):
		return errorf(codeNotFound, "The message you reply to is not in the history")
	case errors.Is(err, store.ErrFileNotFound):
		return errorf(codeNotFound, "An attached file is gone; upload it again")
	case errors.Is(err, store.ErrNotAllowed):
		return errorf(codeForbidden, "An attached file is not yours to send, or was sent already")
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "Room %s does not exist", roomID)
	case errors.Is(err, store.ErrNotMember):
		return errorf(codeNotMember, "Not in room")
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeUserNotFound, "User not found")
	case errors.As(err, &muted):
		return mutedError(roomID, muted.Until)
	}
	return err
}

func mutedError(roomID string, until time.Time) *protoError {
	if !until.IsZero() {
		return errorf(codeMuted, "You are muted in %s until %s", roomID, formatTime(until))
	}
	return errorf(codeMuted, "You are muted in %s until a moderator unmutes you", roomID)
}

func (h *messageHandlers) handleChat(ctx context.Context, s *session, f Frame) error {
	var d chatData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.RoomID == "" || (d.Content == "" && len(d.Files) == 0) {
		return errorf(codeBadRequest, "Missing roomId or content")
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	replyTo, perr := h.checkParts(d.Content, d.ClientMsgID, d.ReplyTo, d.Files)
	if perr != nil {
		return perr
	}
	if !h.hub.IsMember(s.conn, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// Membership and mutes are checked again when the message is applied,
	// in log order.
	return h.post(ctx, s, f.Type, store.PostMessage{RoomID: d.RoomID, SenderID: s.user.ID, Content: d.Content,
		ClientMsgID: d.ClientMsgID, ReplyTo: replyTo, FileIDs: d.Files, Keep: h.keep})
}

func (h *messageHandlers) handlePrivate(ctx context.Context, s *session, f Frame) error {
	var d privateData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if (d.TargetUserID == "" && d.TargetUsername == "") || (d.Content == "" && len(d.Files) == 0) {
		return errorf(codeBadRequest, "Missing targetUserId or content")
	}
	replyTo, perr := h.checkParts(d.Content, d.ClientMsgID, d.ReplyTo, d.Files)
	if perr != nil {
		return perr
	}
	target, err := findUser(h.store, d.TargetUserID, d.TargetUsername)
	if err != nil {
		return err
	}
	if target.ID == s.user.ID {
		return errorf(codeInvalidTarget, "You cannot send a private message to yourself")
	}
	return h.post(ctx, s, f.Type, store.PostMessage{SenderID: s.user.ID, TargetID: target.ID, Content: d.Content,
		ClientMsgID: d.ClientMsgID, ReplyTo: replyTo, FileIDs: d.Files, Keep: h.keep})
}

// post proposes a message without waiting for it, so a client can have a
// few on their way. Its acknowledgement is the sender's own copy of the
// message, delivered with everyone else's; a refusal comes back as an
// error frame naming the message's clientMsgId.
func (h *messageHandlers) post(ctx context.Context, s *session, typ string, cmd store.PostMessage) error {
	select {
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	roomID := cmd.RoomID
	err := h.bus.Send(ctx, s.origin(), cmd, func(ap store.Applied) {
		<-s.inFlight
		if err := ap.Outcome.Err; err != nil {
			s.send(errorFrame(postError(err, roomID), typ, cmd.ClientMsgID))
		}
	})
	if err != nil {
		<-s.inFlight
	}
	return err
}

func (h *messageHandlers) handleTyping(ctx context.Context, s *session, f Frame) error {
	var d typingData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if !h.hub.IsMember(s.conn, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// A keystroke-happy client would otherwise fan out a frame to the
	// whole room per key; "still typing" once per interval is enough.
	now := time.Now()
	if d.IsTyping {
		if now.Sub(s.typingAt[d.RoomID]) < typingInterval {
			return nil
		}
		room, err := h.store.Room(d.RoomID)
		if err != nil {
			return err
		}
		if until, muted := room.MuteAt(s.user.ID, h.now()); muted {
			return mutedError(d.RoomID, until)
		}
		s.typingAt[d.RoomID] = now
	} else {
		delete(s.typingAt, d.RoomID)
	}
	h.hub.Typing(d.RoomID, s.user.ID, marshalFrame("typing", typingOutData{RoomID: d.RoomID, UserID: formatID(s.user.ID),
		Username: s.user.Name, IsTyping: d.IsTyping}))
	return nil
}

// typingInterval is the least time between two relayed isTyping:true
// frames of one connection in one room; isTyping:false always goes through.
const typingInterval = 2 * time.Second

// maxHistoryPage is the most messages one history frame returns.
const maxHistoryPage = 100

// conversation resolves roomId or withUserId to a conversation the user
// takes part in.
func (h *messageHandlers) conversation(s *session, roomID, withUserID string) (store.Conv, error) {
	switch {
	case roomID != "" && withUserID != "":
		return store.Conv{}, errorf(codeBadRequest, "Give roomId or withUserId, not both")
	case roomID != "":
		if err := checkRoomID(roomID); err != nil {
			return store.Conv{}, err
		}
		if !h.hub.IsMember(s.conn, roomID) {
			return store.Conv{}, errorf(codeNotMember, "Not in room")
		}
		return store.RoomConv(roomID), nil
	case withUserID != "":
		peer, err := findUser(h.store, withUserID, "")
		if err != nil {
			return store.Conv{}, err
		}
		return store.DirectConv(s.user.ID, peer.ID), nil
	}
	return store.Conv{}, errorf(codeBadRequest, "Missing roomId or withUserId")
}

func (h *messageHandlers) handleHistory(ctx context.Context, s *session, f Frame) error {
	var d historyData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	limit := d.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > maxHistoryPage:
		return errorf(codeBadRequest, "limit must be between 1 and %d", maxHistoryPage)
	}
	var ids [3]uint64
	given := 0
	for i, p := range [][2]string{{"before", d.Before}, {"after", d.After}, {"around", d.Around}} {
		id, perr := parseMessageID(p[0], p[1])
		if perr != nil {
			return perr
		}
		if ids[i] = id; id != 0 {
			given++
		}
	}
	if given > 1 {
		return errorf(codeBadRequest, "Give one of before, after and around, not several")
	}
	before, after, around := ids[0], ids[1], ids[2]
	conv, err := h.conversation(s, d.RoomID, d.WithUserID)
	if err != nil {
		return err
	}
	var page store.Page
	switch {
	case around != 0:
		page, err = h.store.HistoryAround(conv, around, limit)
	case after != 0:
		page, err = h.store.HistoryAfter(conv, after, limit)
	default:
		page, err = h.store.History(conv, before, limit)
	}
	if err != nil {
		return err
	}
	out := historyOutData{Messages: toMessageFrames(page.Messages), HasMore: page.HasMore, HasNewer: page.HasNewer, Trimmed: page.Trimmed,
		Events: toRoomEvents(page.Events, page.Messages)}
	if conv.IsDirect() || len(out.Events) == 0 {
		out.Events = nil // omitted: a page of a room says nothing by leaving it out
	}
	out.RoomID, out.WithUserID = replyAddress(conv, s.user.ID)
	s.send(marshalFrame("history", out))
	// Fetching the newest page of a direct conversation reads it.
	if conv.IsDirect() && before == 0 && after == 0 && around == 0 && len(page.Messages) > 0 {
		last := page.Messages[len(page.Messages)-1].Seq
		return h.bus.Send(ctx, s.origin(), store.MarkRead{UserID: s.user.ID, Conv: conv, Seq: last}, func(store.Applied) {})
	}
	return nil
}

// handleRead moves the user's read marker in a room or conversation; the
// user's other connections are told, so unread counts agree across
// devices.
func (h *messageHandlers) handleRead(ctx context.Context, s *session, f Frame) error {
	var d readData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	seq, perr := parseMessageID("messageId", d.MessageID)
	if perr != nil || seq == 0 {
		return errorf(codeBadRequest, "messageId must be a message id")
	}
	conv, err := h.conversation(s, d.RoomID, d.WithUserID)
	if err != nil {
		return err
	}
	_, err = h.bus.Do(ctx, s.origin(), store.MarkRead{UserID: s.user.ID, Conv: conv, Seq: seq})
	return actionError(err, conv)
}

// target resolves the message a frame acts on.
func (h *messageHandlers) target(s *session, d targetData) (store.Conv, uint64, error) {
	seq, perr := parseMessageID("messageId", d.MessageID)
	if perr != nil {
		return store.Conv{}, 0, perr
	}
	if seq == 0 {
		return store.Conv{}, 0, errorf(codeBadRequest, "Missing messageId")
	}
	conv, err := h.conversation(s, d.RoomID, d.WithUserID)
	return conv, seq, err
}

// actionError turns the store's refusals of an edit, delete, reaction or
// read marker into the client's errors.
func actionError(err error, conv store.Conv) error {
	var muted *store.MutedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeNotFound, "No such message (it may have been deleted or aged out)")
	case errors.Is(err, store.ErrNotAllowed):
		return errorf(codeForbidden, "That is not your message")
	case errors.Is(err, store.ErrTooManyReactions):
		return errorf(codeLimitReached, "A message takes at most %d different reactions", maxReactionKinds)
	case errors.Is(err, store.ErrNotMember):
		return errorf(codeNotMember, "Not in room")
	case errors.As(err, &muted):
		return mutedError(conv.RoomID, muted.Until)
	}
	return err
}

// maxReactionKinds is the store's bound on the different emoji on one message.
const maxReactionKinds = 20

// handleEdit replaces the text of one's own message.
func (h *messageHandlers) handleEdit(ctx context.Context, s *session, f Frame) error {
	var d editData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	conv, seq, err := h.target(s, d.targetData)
	if err != nil {
		return err
	}
	if err := checkContent(d.Content, h.limits.MessageChars); err != nil {
		return err
	}
	_, err = h.bus.Do(ctx, s.origin(), store.EditMessage{Conv: conv, Seq: seq, EditorID: s.user.ID, Content: d.Content})
	return actionError(err, conv)
}

// handleDelete deletes one's own message; in a room its owner, moderators
// and admins may delete anyone's.
func (h *messageHandlers) handleDelete(ctx context.Context, s *session, f Frame) error {
	var d targetData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	conv, seq, err := h.target(s, d)
	if err != nil {
		return err
	}
	out, err := h.bus.Do(ctx, s.origin(), store.DeleteMessage{Conv: conv, Seq: seq, ByID: s.user.ID})
	if err != nil {
		return actionError(err, conv)
	}
	if out.Message.SenderID != s.user.ID {
		h.log.Info("moderation", "action", "deleted message", "room", conv.RoomID, "id", seq, "author", out.Message.SenderName, "by", s.user.Name)
	}
	return nil
}

// handleReact toggles the user's emoji on a message.
func (h *messageHandlers) handleReact(ctx context.Context, s *session, f Frame) error {
	var d reactData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkEmoji(d.Emoji); err != nil {
		return err
	}
	conv, seq, err := h.target(s, d.targetData)
	if err != nil {
		return err
	}
	_, err = h.bus.Do(ctx, s.origin(), store.React{Conv: conv, Seq: seq, UserID: s.user.ID, Emoji: d.Emoji})
	return actionError(err, conv)
}

// handleThread answers with a message and its replies, a page at a time.
func (h *messageHandlers) handleThread(ctx context.Context, s *session, f Frame) error {
	var d threadRequest
	if err := decodeData(f, &d); err != nil {
		return err
	}
	after, perr := parseMessageID("after", d.After)
	if perr != nil {
		return perr
	}
	conv, seq, err := h.target(s, d.targetData)
	if err != nil {
		return err
	}
	parent, replies, more, err := h.store.Thread(conv, seq, after)
	if err != nil {
		return actionError(err, conv)
	}
	out := threadData{MessageID: formatMessageID(seq), Parent: toMessageFrame(parent), Replies: toMessageFrames(replies), HasMore: more}
	out.RoomID, out.WithUserID = replyAddress(conv, s.user.ID)
	s.send(marshalFrame("thread", out))
	return nil
}

// Search bounds.
const (
	minSearchChars   = 2
	maxSearchChars   = 100
	maxSearchResults = 100
)

// handleSearch finds messages in the rooms and conversations the user
// belongs to (or one of them), newest first.
func (h *messageHandlers) handleSearch(ctx context.Context, s *session, f Frame) error {
	var d searchData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	q := strings.TrimSpace(d.Query)
	if n := utf8.RuneCountInString(q); n < minSearchChars || n > maxSearchChars {
		return errorf(codeBadRequest, "A search is %d to %d characters", minSearchChars, maxSearchChars)
	}
	limit := d.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > maxSearchResults:
		return errorf(codeBadRequest, "limit must be between 1 and %d", maxSearchResults)
	}
	// A search reads up to 20,000 messages: its allowance is taken, and
	// its place in line, before any are read.
	res, ok, wait := h.searches.Reserve(formatID(s.user.ID))
	if !ok {
		h.metrics.rateLimited.WithLabelValues("searches").Inc()
		return rateLimited(fmt.Sprintf("You have searched %d times in the last minute; wait a little", h.limits.SearchesPerMinute), wait)
	}
	leave, err := h.gate.enter(ctx, s.user.ID)
	if err != nil {
		res.Cancel() // it did not run
		h.metrics.rateLimited.WithLabelValues("searches").Inc()
		return err
	}
	defer leave()
	var convs []store.Conv
	if d.RoomID != "" || d.WithUserID != "" {
		conv, err := h.conversation(s, d.RoomID, d.WithUserID)
		if err != nil {
			return err
		}
		convs = []store.Conv{conv}
	} else {
		for _, r := range h.hub.UserRooms(s.conn) {
			convs = append(convs, store.RoomConv(r))
		}
		peers, err := h.store.DirectPeers(s.user.ID)
		if err != nil {
			return err
		}
		for _, p := range peers {
			convs = append(convs, store.DirectConv(s.user.ID, p))
		}
	}
	hits, truncated, err := h.store.Search(convs, q, limit)
	if err != nil {
		return err
	}
	s.send(marshalFrame("searchResults", searchResultsData{Query: q, Results: toMessageFrames(hits), Truncated: truncated}))
	return nil
}

// searchGate keeps searches from crowding out everything else: one user
// runs one search at a time, and the server at most len(slots), which
// leaves CPUs free for chat. Searches beyond that wait for a slot in the
// order they came (a channel serves its waiting senders first come,
// first served), so one user's searches cannot starve another's.
type searchGate struct {
	slots chan struct{}

	mu      sync.Mutex // guards running
	running map[uint64]bool
}

func newSearchGate(n int) *searchGate {
	return &searchGate{slots: make(chan struct{}, max(n, 1)), running: map[uint64]bool{}}
}

// enter waits for a slot for one of user's searches and returns its
// release; a user whose search is still running is refused at once.
func (g *searchGate) enter(ctx context.Context, user uint64) (func(), error) {
	g.mu.Lock()
	if g.running[user] {
		g.mu.Unlock()
		return nil, &protoError{Code: codeRateLimited, Message: "Your previous search is still running; wait for its results", RetryAfter: 1}
	}
	g.running[user] = true
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		delete(g.running, user)
		g.mu.Unlock()
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, &protoError{Code: codeRateLimited, Message: "The server is busy with other searches; try again shortly", RetryAfter: 2}
	}
}

// parseMessageID reads a message id (or an empty one as 0).
func parseMessageID(field, id string) (uint64, *protoError) {
	if id == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return 0, errorf(codeBadRequest, "%s must be a message id", field)
	}
	return n, nil
}

// parseUserID reads a user id.
func parseUserID(id string) (uint64, error) { return strconv.ParseUint(id, 10, 64) }
