package main

import (
	"time"

	"parley/internal/auth"
)

// Presence flaps. A user's first connection announces them online and
// their last one's close announces them offline; a client reconnecting
// in a loop would make every other online user hear of it each time.
// So each user's announcements spend from an allowance: presenceBurst at
// once, then one per presence.announce_interval. A change while the
// allowance is spent is not lost: when it refills, the user's state then
// is announced if it differs from the last one announced.

// presenceBurst is how many of one user's presence changes are announced
// at once before presence.announce_interval applies.
const presenceBurst = 4

// deferredPresence is a user whose presence changed while their
// allowance was spent.
type deferredPresence struct {
	announcedOnline bool      // what others last heard
	last            *presence // the user's latest presence, for its audience
	timer           *time.Timer
}

// newPresenceBudget is the per-user allowance of announcements; nil
// when every change is announced.
func newPresenceBudget(interval time.Duration) *auth.Limiter {
	if interval <= 0 {
		return nil
	}
	return auth.NewLimiter(presenceBurst, presenceBurst*interval)
}

func presenceFrame(p *presence, online bool) []byte {
	if online {
		return marshalFrame("userOnline", p.ref())
	}
	return marshalFrame("userOffline", p.ref())
}

// announceLocked announces that a user came online or went offline, now
// or, past their allowance, once it has refilled. Call with h.mu held.
func (h *Hub) announceLocked(p *presence, online bool) {
	if d := h.deferred[p.id]; d != nil {
		d.last = p // settlePresence announces whatever holds then
		return
	}
	if h.presenceBudget == nil || h.closing {
		h.sendPresenceLocked(p, presenceFrame(p, online))
		return
	}
	_, ok, wait := h.presenceBudget.Reserve(formatID(p.id))
	if ok {
		h.sendPresenceLocked(p, presenceFrame(p, online))
		return
	}
	d := &deferredPresence{announcedOnline: !online, last: p}
	h.deferred[p.id] = d
	h.background.Add(1)
	d.timer = time.AfterFunc(wait, func() {
		defer h.background.Done()
		h.settlePresence(p.id)
	})
}

// settlePresence announces a deferred user's presence as it is now, if
// it differs from what others last heard.
func (h *Hub) settlePresence(userID uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.deferred[userID]
	if d == nil {
		return
	}
	delete(h.deferred, userID)
	p, online := h.presenceLocked(userID), true // here or on another node
	if p == nil {
		p, online = d.last, false
	}
	if online == d.announcedOnline {
		return
	}
	h.presenceBudget.Spend(formatID(userID))
	h.sendPresenceLocked(p, presenceFrame(p, online))
}

// stopPresenceLocked drops what is deferred, at shutdown: nobody is left
// to tell, and shutdown does not wait for the timers.
func (h *Hub) stopPresenceLocked() {
	h.closing = true
	for id, d := range h.deferred {
		if d.timer.Stop() {
			h.background.Done()
		}
		delete(h.deferred, id)
	}
}
