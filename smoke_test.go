package main

import "testing"

func TestSmoke(t *testing.T) {
	ts := startServer(t, nil)
	a, aa := signedIn(t, ts, "alice")
	b, _ := signedIn(t, ts, "bob")
	a.await("userOnline")
	a.join("general")
	b.join("general")
	a.await("userJoined")
	a.send("chat", map[string]string{"roomId": "general", "content": "hi", "clientMsgId": "x1"})
	var m messageFrame
	decodeInto(t, a.await("message"), &m)
	if m.ClientMsgID != "x1" || m.SenderID != aa.UserID {
		t.Fatalf("ack %+v", m)
	}
	decodeInto(t, b.await("message"), &m)
	if m.Content != "hi" {
		t.Fatal(m)
	}
	ts.Restart()
	c, _ := signedIn(t, ts, "alice")
	j := c.join("general")
	if len(j.History) != 1 {
		t.Fatal(j)
	}
}
