package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The input attacks of issue 13: text that displays in another order
// than it reads, controls from the C1 range, reasons that are long or
// span lines, reactions that are not one emoji, and binary frames.

// TestInput_ControlsAndBidiRefused: C1 controls and bidi overrides are
// refused in messages, edits, topics, reasons and file names.
func TestInput_ControlsAndBidiRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, ownerA := signedIn(t, ts, "owner")
	owner.join("room")
	member, memberA := signedIn(t, ts, "member")
	member.join("room")
	owner.send("chat", map[string]string{"roomId": "room", "content": "plain"})
	m := owner.awaitMessage("plain")

	tricks := []string{"next\u0085line", "csi\u009b31m", "invoice\u202Efdp.exe", "\u202Aembedded\u202C", "\u2066isolated\u2069", "del\u007f"}
	for _, s := range tricks {
		owner.send("chat", map[string]string{"roomId": "room", "content": s})
		owner.expectError(codeInvalidContent, "message", "userJoined")
		owner.send("edit", map[string]string{"roomId": "room", "messageId": m.ID, "content": s})
		owner.expectError(codeInvalidContent)
		owner.send("private", map[string]string{"targetUserId": memberA.UserID, "content": s})
		owner.expectError(codeInvalidContent)
		owner.send("setTopic", map[string]string{"roomId": "room", "topic": s})
		owner.expectError(codeBadRequest)
		owner.send("join", map[string]string{"roomId": "new-room", "topic": s})
		owner.expectError(codeBadRequest)
		owner.send("kick", map[string]string{"roomId": "room", "userId": memberA.UserID, "reason": s})
		owner.expectError(codeBadRequest)
		status, _ := upload(t, ts, ownerA.Token, s+".txt", []byte("hello"))
		if status != http.StatusBadRequest {
			t.Fatalf("upload named %q: HTTP %d, want 400", s, status)
		}
	}
	// Right-to-left text with its marks is text, not a trick.
	owner.send("chat", map[string]string{"roomId": "room", "content": "שלום\u200F world\u200E"})
	owner.awaitMessage("שלום\u200F world\u200E")
	member.none("kicked")
}

// TestInput_Reasons: a reason is one line of at most 250 characters,
// counted as characters, and arrives whole.
func TestInput_Reasons(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, _ := signedIn(t, ts, "owner")
	owner.join("room")
	member, memberA := signedIn(t, ts, "member")
	member.join("room")
	owner.await("userJoined")

	for _, reason := range []string{"first line\nsecond line", "carriage\rreturn", strings.Repeat("é", 251)} {
		owner.send("mute", map[string]any{"roomId": "room", "userId": memberA.UserID, "reason": reason})
		owner.expectError(codeBadRequest)
	}
	whole := strings.Repeat("é", 250) // 500 bytes: a byte limit would cut it in half
	owner.send("mute", map[string]any{"roomId": "room", "userId": memberA.UserID, "reason": whole})
	var ev moderationEvent
	decodeInto(t, member.await("muted"), &ev)
	if ev.Reason != whole {
		t.Fatalf("muted reason is %d characters %q, want the 250 sent", len([]rune(ev.Reason)), ev.Reason)
	}
}

// TestInput_ReactionIsOneEmoji: a reaction is exactly one emoji, in any
// of its standard forms; look-alike letters, two emoji, text and
// controls are refused.
func TestInput_ReactionIsOneEmoji(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0 // more reactions than a burst
	ts := startServer(t, &cfg)
	c, _ := signedIn(t, ts, "reactor")
	c.join("room")
	c.send("chat", map[string]string{"roomId": "room", "content": "react to me"})
	m := c.awaitMessage("react to me")
	for _, good := range []string{"👍", "👍🏽", "🇫🇷", "1️⃣", "#️⃣", "👩‍👩‍👧", "❤", "❤️", "🏴‍☠️", "👩🏻‍❤️‍💋‍👨🏼"} {
		c.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": good})
		var r reactionData
		decodeInto(t, c.expect("reaction"), &r)
		if r.Emoji != good {
			t.Fatalf("reaction %q came back as %q", good, r.Emoji)
		}
	}
	for _, bad := range []string{"ｓｃｒｉｐｔ", "ｓ", "中", "a", "1", "#", "👍👍", "👍 ", "\u202E👍", "👍\u0085", "<b>", "😀x"} {
		c.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": bad})
		if e := c.expect("error"); !strings.Contains(string(e.Data), codeInvalidEmoji) {
			t.Fatalf("reaction %q answered %s, want invalid_emoji", bad, e.Data)
		}
	}
}

// TestInput_BinaryFrames: a binary frame is answered bad_request and
// spends from the frames allowance, so a flood of them is closed with
// 1008 like any other flood.
func TestInput_BinaryFrames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := dial(t, ts.WSURL())
	binary := func(b []byte) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.conn.WriteMessage(websocket.BinaryMessage, b)
	}
	// The frames allowance (a burst of 100) runs out: rate_limited.
	limited := 0
	for i := range 110 {
		if err := binary([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		var e errorData
		decodeInto(t, c.expect("error"), &e)
		if e.Code == codeRateLimited {
			limited++
		} else if e.Code != codeBadRequest {
			t.Fatalf("binary frame answered %+v", e)
		}
	}
	if limited == 0 {
		t.Fatal("110 binary frames at once: none answered rate_limited")
	}
	// Going on regardless is closed with 1008.
	sent := 0
	for ; sent < 3000 && binary([]byte("x")) == nil; sent++ {
	}
	var ce *websocket.CloseError
	if err := c.waitClosed(frameWait); !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("binary flood: %v, want close 1008", err)
	}
	t.Logf("binary frames: %d of 110 at once rate_limited; a flood closed with 1008 after %d more", limited, sent)
}
