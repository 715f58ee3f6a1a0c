package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxFilesPerMessage bounds the attachments of one message.
const maxFilesPerMessage = 10

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

// checkAttachments validates a message's parts: content (which may be
// empty when files come with it), clientMsgId, reply and file ids.
func (s *server) checkAttachments(content, clientMsgID, replyTo string, files []string) (uint64, *protoError) {
	if err := checkClientMsgID(clientMsgID); err != nil {
		return 0, err
	}
	if len(files) > maxFilesPerMessage {
		return 0, errorf(codeBadRequest, "At most %d files per message", maxFilesPerMessage)
	}
	if len(files) == 0 || content != "" {
		if err := checkContent(content, s.cfg.Limits.MessageChars); err != nil {
			return 0, err
		}
	}
	return parseMessageID("replyTo", replyTo)
}

// appendError turns a refused append into the client's error.
func appendError(err error, roomID string) error {
	switch {
	case errors.Is(err, ErrParentNotFound):
		return errorf(codeNotFound, "The message you reply to is not in the history")
	case errors.Is(err, ErrFileNotFound):
		return errorf(codeNotFound, "An attached file is gone; upload it again")
	case errors.Is(err, ErrNotAllowed):
		return errorf(codeForbidden, "An attached file is not yours to send, or was sent already")
	case errors.Is(err, ErrNotFound):
		return errorf(codeInvalidRoom, "Room %s does not exist", roomID)
	case errors.Is(err, ErrNotMember):
		return errorf(codeNotMember, "Not in room")
	}
	var muted *MutedError
	if errors.As(err, &muted) {
		return mutedError(roomID, muted.Until)
	}
	return err
}

func (s *server) handleChat(ctx context.Context, c *client, f Frame) error {
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
	replyTo, perr := s.checkAttachments(d.Content, d.ClientMsgID, d.ReplyTo, d.Files)
	if perr != nil {
		return perr
	}
	a := c.user.Load()
	if !s.hub.IsMember(a.ID, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// Mutes are checked by the store, in the commit that would save the
	// message (see appendBatch.append), which reads the room anyway.
	return s.queueMessage(ctx, c, f.Type, Message{RoomID: d.RoomID, SenderID: a.ID, SenderName: a.Name,
		Content: d.Content, Time: s.now(), ClientMsgID: d.ClientMsgID, ReplyTo: replyTo, FileIDs: d.Files})
}

// maxInFlight is how many of one connection's messages may wait for the
// same group commit. More would let one client put a burst into a single
// commit, which is then fanned out to every member at once and can
// overflow their send buffers.
const maxInFlight = 4

// queueMessage hands a message to the store's group commit without
// waiting for it to be saved, so a client can have a few messages on their
// way. Delivery, including the sender's acknowledgement, happens in
// deliver once the message is committed; a failure comes back as an
// error frame that names the message's clientMsgId.
func (s *server) queueMessage(ctx context.Context, c *client, typ string, m Message) error {
	select {
	case c.inFlight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := s.store.QueueMessage(ctx, m, func(_ Message, err error) {
		<-c.inFlight
		if err != nil {
			err = appendError(err, m.RoomID)
			// A failed commit is logged once by the store; each of its
			// messages only at debug level, or a batch of a thousand
			// would flood the log.
			var pe *protoError
			if !errors.As(err, &pe) {
				s.log.Debug("message not saved", "client", c.id, "user", m.SenderName, "err", err)
			}
			c.send(errorFrame(err, typ, m.ClientMsgID))
		}
	})
	if err != nil {
		<-c.inFlight
	}
	return err
}

// checkNotMuted refuses a muted member's messages and typing notices.
func (s *server) checkNotMuted(roomID string, userID uint64) error {
	room, err := s.store.Room(roomID)
	if err != nil {
		return err
	}
	if until, muted := room.MuteAt(userID, s.now()); muted {
		return mutedError(roomID, until)
	}
	return nil
}

func mutedError(roomID string, until time.Time) *protoError {
	if !until.IsZero() {
		return errorf(codeMuted, "You are muted in %s until %s", roomID, formatTime(until))
	}
	return errorf(codeMuted, "You are muted in %s until a moderator unmutes you", roomID)
}

func (s *server) handlePrivate(ctx context.Context, c *client, f Frame) error {
	var d privateData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if (d.TargetUserID == "" && d.TargetUsername == "") || (d.Content == "" && len(d.Files) == 0) {
		return errorf(codeBadRequest, "Missing targetUserId or content")
	}
	replyTo, perr := s.checkAttachments(d.Content, d.ClientMsgID, d.ReplyTo, d.Files)
	if perr != nil {
		return perr
	}
	target, err := s.findUser(d.TargetUserID, d.TargetUsername)
	if err != nil {
		return err
	}
	a := c.user.Load()
	if target.ID == a.ID {
		return errorf(codeInvalidTarget, "You cannot send a private message to yourself")
	}
	return s.queueMessage(ctx, c, f.Type, Message{SenderID: a.ID, SenderName: a.Name, TargetID: target.ID,
		TargetName: target.Name, Content: d.Content, Time: s.now(), ClientMsgID: d.ClientMsgID, ReplyTo: replyTo, FileIDs: d.Files})
}

// findUser resolves a user by id or, failing that, by name. Deleted
// accounts are found too: their messages remain.
func (s *server) findUser(id, name string) (User, error) {
	var (
		u   User
		err error
	)
	if id != "" {
		n, perr := strconv.ParseUint(id, 10, 64)
		if perr != nil {
			return User{}, errorf(codeUserNotFound, "User not found")
		}
		u, err = s.store.UserByID(n)
	} else {
		u, err = s.store.UserByName(name)
	}
	if errors.Is(err, ErrNotFound) {
		return User{}, errorf(codeUserNotFound, "User not found")
	}
	return u, err
}

// deliver fans committed messages out. The store calls it from its writer
// goroutine in commit order, so every connection sees a conversation's
// messages in id order. The sender's own copy is its acknowledgement.
func (s *server) deliver(msgs []Message) {
	n := 0
	for _, m := range msgs {
		mf := toMessageFrame(m)
		if m.IsDirect() {
			n += s.hub.SendUser(m.TargetID, marshalFrame("privateMessage", mf))
			n += s.hub.SendUser(m.SenderID, marshalFrame("privateMessageSent", mf))
			continue
		}
		n += s.hub.Broadcast(m.RoomID, marshalFrame("message", mf), 0)
	}
	s.metrics.deliveries.Add(float64(n))
}

// publish sends an event about a message in conv to everyone who sees
// that conversation: the room's members, or the two parties.
func (s *server) publish(conv Conv, frame []byte) {
	if conv.IsDirect() {
		s.hub.SendUser(conv.A, frame)
		s.hub.SendUser(conv.B, frame)
		return
	}
	s.hub.Broadcast(conv.RoomID, frame, 0)
}

func (s *server) handleTyping(ctx context.Context, c *client, f Frame) error {
	var d typingData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	a := c.user.Load()
	if !s.hub.IsMember(a.ID, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// A keystroke-happy client would otherwise fan out a frame to the
	// whole room per key; "still typing" once per interval is enough.
	now := time.Now()
	if d.IsTyping {
		if now.Sub(c.typingAt[d.RoomID]) < typingInterval {
			return nil
		}
		if err := s.checkNotMuted(d.RoomID, a.ID); err != nil {
			return err
		}
		c.typingAt[d.RoomID] = now
	} else {
		delete(c.typingAt, d.RoomID)
	}
	s.hub.Broadcast(d.RoomID, marshalFrame("typing", typingOutData{RoomID: d.RoomID, UserID: a.idString(),
		Username: a.Name, IsTyping: d.IsTyping}), a.ID)
	return nil
}

// typingInterval is the least time between two relayed isTyping:true
// frames of one connection in one room; isTyping:false always goes through.
const typingInterval = 2 * time.Second

// maxHistoryPage is the most messages one history frame returns.
const maxHistoryPage = 100

// conversation resolves roomId or withUserId to a conversation the user
// takes part in.
func (s *server) conversation(c *client, roomID, withUserID string) (Conv, error) {
	a := c.user.Load()
	switch {
	case roomID != "" && withUserID != "":
		return Conv{}, errorf(codeBadRequest, "Give roomId or withUserId, not both")
	case roomID != "":
		if err := checkRoomID(roomID); err != nil {
			return Conv{}, err
		}
		if !s.hub.IsMember(a.ID, roomID) {
			return Conv{}, errorf(codeNotMember, "Not in room")
		}
		return RoomConv(roomID), nil
	case withUserID != "":
		peer, err := s.findUser(withUserID, "")
		if err != nil {
			return Conv{}, err
		}
		return DirectConv(a.ID, peer.ID), nil
	}
	return Conv{}, errorf(codeBadRequest, "Missing roomId or withUserId")
}

// reply addresses an answer about conv: roomId, or withUserId seen from the asker.
func replyAddress(conv Conv, me uint64) (roomID, withUserID string) {
	if !conv.IsDirect() {
		return conv.RoomID, ""
	}
	peer := conv.A
	if peer == me {
		peer = conv.B
	}
	return "", strconv.FormatUint(peer, 10)
}

func (s *server) handleHistory(ctx context.Context, c *client, f Frame) error {
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
	before, perr := parseMessageID("before", d.Before)
	if perr != nil {
		return perr
	}
	after, perr := parseMessageID("after", d.After)
	if perr != nil {
		return perr
	}
	around, perr := parseMessageID("around", d.Around)
	if perr != nil {
		return perr
	}
	given := 0
	for _, id := range []uint64{before, after, around} {
		if id != 0 {
			given++
		}
	}
	if given > 1 {
		return errorf(codeBadRequest, "Give one of before, after and around, not several")
	}
	conv, err := s.conversation(c, d.RoomID, d.WithUserID)
	if err != nil {
		return err
	}
	a := c.user.Load()
	out := historyOutData{}
	out.RoomID, out.WithUserID = replyAddress(conv, a.ID)
	var msgs []Message
	switch {
	case around != 0:
		msgs, out.HasMore, out.HasNewer, err = s.store.HistoryAround(conv, around, limit)
	case after != 0:
		msgs, out.HasMore, out.HasNewer, err = s.store.HistoryAfter(conv, after, limit)
	case conv.IsDirect():
		peer := conv.A + conv.B - a.ID
		msgs, out.HasMore, err = s.store.DirectHistory(a.ID, peer, before, limit)
		// Fetching the newest page reads the conversation.
		if err == nil && before == 0 && len(msgs) > 0 {
			err = s.store.MarkDirectRead(a.ID, peer, msgs[len(msgs)-1].Seq)
		}
	default:
		msgs, out.HasMore, err = s.store.RoomHistory(conv.RoomID, before, limit)
	}
	if err != nil {
		return err
	}
	if !out.HasMore {
		if out.Trimmed, err = s.store.HistoryTrimmed(conv); err != nil {
			return err
		}
	}
	out.Messages = toMessageFrames(msgs)
	c.send(marshalFrame("history", out))
	return nil
}

// handleRead moves the user's read marker in a room or conversation and
// tells their other connections, so unread counts agree across devices.
func (s *server) handleRead(ctx context.Context, c *client, f Frame) error {
	var d readData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	seq, perr := parseMessageID("messageId", d.MessageID)
	if perr != nil || seq == 0 {
		return errorf(codeBadRequest, "messageId must be a message id")
	}
	conv, err := s.conversation(c, d.RoomID, d.WithUserID)
	if err != nil {
		return err
	}
	a := c.user.Load()
	if conv.IsDirect() {
		err = s.store.MarkDirectRead(a.ID, conv.A+conv.B-a.ID, seq)
	} else {
		err = s.store.MarkRoomRead(a.ID, conv.RoomID, seq)
	}
	if err != nil {
		return err
	}
	ev := readUpdatedData{MessageID: formatMessageID(seq)}
	ev.RoomID, ev.WithUserID = replyAddress(conv, a.ID)
	frame := marshalFrame("readUpdated", ev)
	for _, other := range s.hub.ConnectionsFor(a.ID, nil) {
		if other != c {
			other.send(frame)
		}
	}
	return nil
}

// target resolves the message a frame acts on.
func (s *server) target(c *client, d targetData) (Conv, uint64, error) {
	seq, perr := parseMessageID("messageId", d.MessageID)
	if perr != nil {
		return Conv{}, 0, perr
	}
	if seq == 0 {
		return Conv{}, 0, errorf(codeBadRequest, "Missing messageId")
	}
	conv, err := s.conversation(c, d.RoomID, d.WithUserID)
	return conv, seq, err
}

// actionError turns the store's refusals of an edit, delete or reaction
// into the client's errors.
func actionError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errorf(codeNotFound, "No such message (it may have been deleted or aged out)")
	case errors.Is(err, ErrNotAllowed):
		return errorf(codeForbidden, "That is not your message")
	case errors.Is(err, ErrTooManyReactions):
		return errorf(codeLimitReached, "A message takes at most %d different reactions", maxReactionKinds)
	}
	return err
}

func messageRefOf(m Message) messageRef {
	ref := messageRef{RoomID: m.RoomID, ID: formatMessageID(m.Seq)}
	if m.IsDirect() {
		ref.SenderID, ref.TargetUserID = strconv.FormatUint(m.SenderID, 10), strconv.FormatUint(m.TargetID, 10)
	}
	return ref
}

// handleEdit replaces the text of one's own message.
func (s *server) handleEdit(ctx context.Context, c *client, f Frame) error {
	var d editData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	conv, seq, err := s.target(c, d.targetData)
	if err != nil {
		return err
	}
	if err := checkContent(d.Content, s.cfg.Limits.MessageChars); err != nil {
		return err
	}
	a := c.user.Load()
	if !conv.IsDirect() {
		if err := s.checkNotMuted(conv.RoomID, a.ID); err != nil {
			return err
		}
	}
	m, err := s.store.EditMessage(conv, seq, a.ID, d.Content, s.now())
	if err != nil {
		return actionError(err)
	}
	ev := messageEditedData{messageRef: messageRefOf(m), Content: m.Content, EditedAt: formatTime(m.EditedAt)}
	if len(m.Mentions) > 0 {
		ev.Mentions = idStrings(m.Mentions)
	}
	s.publish(conv, marshalFrame("messageEdited", ev))
	return nil
}

// handleDelete deletes one's own message; in a room its owner and
// moderators may delete anyone's.
func (s *server) handleDelete(ctx context.Context, c *client, f Frame) error {
	var d targetData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	conv, seq, err := s.target(c, d)
	if err != nil {
		return err
	}
	a := c.user.Load()
	mayDeleteOthers := false
	if !conv.IsDirect() {
		me, room, err := s.actorAndRoom(c, conv.RoomID)
		if err != nil {
			return err
		}
		mayDeleteOthers = rank(room, me) >= rankModerator
	}
	m, err := s.store.DeleteMessage(conv, seq, a.ID, mayDeleteOthers)
	if err != nil {
		return actionError(err)
	}
	s.publish(conv, marshalFrame("messageDeleted", messageDeletedData{messageRef: messageRefOf(m), By: a.ref()}))
	if m.SenderID != a.ID {
		s.log.Info("moderation", "action", "deleted message", "room", conv.RoomID, "id", m.Seq, "author", m.SenderName, "by", a.Name)
	}
	return nil
}

// maxEmojiBytes bounds one reaction; an emoji with modifiers and joiners
// stays well within it.
const maxEmojiBytes = 32

func checkEmoji(e string) *protoError {
	if e == "" || len(e) > maxEmojiBytes {
		return errorf(codeInvalidEmoji, "A reaction is one emoji")
	}
	for _, r := range e {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError || (r < 0x80 && !unicode.IsDigit(r) && r != '#' && r != '*') {
			return errorf(codeInvalidEmoji, "A reaction is one emoji")
		}
	}
	return nil
}

// handleReact toggles the user's emoji on a message.
func (s *server) handleReact(ctx context.Context, c *client, f Frame) error {
	var d reactData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkEmoji(d.Emoji); err != nil {
		return err
	}
	conv, seq, err := s.target(c, d.targetData)
	if err != nil {
		return err
	}
	a := c.user.Load()
	m, added, err := s.store.ToggleReaction(conv, seq, a.ID, d.Emoji)
	if err != nil {
		return actionError(err)
	}
	ev := reactionData{messageRef: messageRefOf(m), Emoji: d.Emoji, UserID: a.idString(), Username: a.Name, Added: added, UserIDs: []string{}}
	for _, r := range m.Reactions {
		if r.Emoji == d.Emoji {
			ev.Count, ev.UserIDs = len(r.Users), idStrings(r.Users)
		}
	}
	s.publish(conv, marshalFrame("reaction", ev))
	return nil
}

// handleThread answers with a message and its replies.
func (s *server) handleThread(ctx context.Context, c *client, f Frame) error {
	var d targetData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	conv, seq, err := s.target(c, d)
	if err != nil {
		return err
	}
	parent, replies, err := s.store.Thread(conv, seq)
	if err != nil {
		return actionError(err)
	}
	out := threadData{MessageID: formatMessageID(seq), Parent: toMessageFrame(parent), Replies: toMessageFrames(replies)}
	out.RoomID, out.WithUserID = replyAddress(conv, c.user.Load().ID)
	c.send(marshalFrame("thread", out))
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
func (s *server) handleSearch(ctx context.Context, c *client, f Frame) error {
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
	a := c.user.Load()
	var convs []Conv
	if d.RoomID != "" || d.WithUserID != "" {
		conv, err := s.conversation(c, d.RoomID, d.WithUserID)
		if err != nil {
			return err
		}
		convs = []Conv{conv}
	} else {
		for _, r := range s.hub.UserRooms(a.ID) {
			convs = append(convs, RoomConv(r))
		}
		peers, err := s.store.DirectPeers(a.ID)
		if err != nil {
			return err
		}
		for _, p := range peers {
			convs = append(convs, DirectConv(a.ID, p))
		}
	}
	hits, truncated, err := s.store.Search(convs, q, limit)
	if err != nil {
		return err
	}
	c.send(marshalFrame("searchResults", searchResultsData{Query: q, Results: toMessageFrames(hits), Truncated: truncated}))
	return nil
}

func toMessageFrame(m Message) messageFrame {
	mf := messageFrame{ID: formatMessageID(m.Seq), Seq: m.Seq, RoomID: m.RoomID, SenderID: strconv.FormatUint(m.SenderID, 10),
		SenderName: m.SenderName, Content: m.Content, Timestamp: formatTime(m.Time), ClientMsgID: m.ClientMsgID,
		ReplyCount: m.ReplyCount, Deleted: m.Deleted}
	if m.IsDirect() {
		mf.TargetUserID = strconv.FormatUint(m.TargetID, 10)
		mf.TargetUsername = m.TargetName
	}
	if p := m.Parent; p != nil {
		mf.ReplyTo = &replyPreview{ID: formatMessageID(p.Seq), SenderName: p.SenderName, Content: p.Content, Deleted: p.Deleted}
		if p.SenderID != 0 {
			mf.ReplyTo.SenderID = strconv.FormatUint(p.SenderID, 10)
		}
	}
	if !m.EditedAt.IsZero() {
		mf.EditedAt = formatTime(m.EditedAt)
	}
	for _, r := range m.Reactions {
		mf.Reactions = append(mf.Reactions, reactionInfo{Emoji: r.Emoji, Count: len(r.Users), UserIDs: idStrings(r.Users)})
	}
	if len(m.Mentions) > 0 {
		mf.Mentions = idStrings(m.Mentions)
	}
	for _, f := range m.Files {
		mf.Files = append(mf.Files, toFileInfo(f))
	}
	return mf
}

func toFileInfo(f FileRef) fileInfo {
	return fileInfo{ID: f.ID, Name: f.Name, Size: f.Size, ContentType: f.ContentType,
		URL: "/files/" + f.ID + "/" + url.PathEscape(f.Name), Image: inlineImageTypes[f.ContentType]}
}

func idStrings(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatUint(id, 10)
	}
	return out
}

func toMessageFrames(msgs []Message) []messageFrame {
	out := make([]messageFrame, len(msgs))
	for i, m := range msgs {
		out[i] = toMessageFrame(m)
	}
	return out
}

// formatMessageID zero-pads the sequence number so ids sort as strings
// in send order, as well as numbers.
func formatMessageID(seq uint64) string { return fmt.Sprintf("%012d", seq) }

// formatTime is the tutorial's timestamp format: ISO 8601 in UTC with
// milliseconds.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// staticFiles returns the embedded web client rooted at its folder.
func staticFiles() fs.FS {
	sub, err := fs.Sub(embeddedStatic, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return sub
}
