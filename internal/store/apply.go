package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// apply is the one place the database changes. It is deterministic: what
// it writes, the outcome and the events depend only on the database and
// the envelopes (no clock, no randomness, no settings of this process),
// so applying the same commands to the same state anywhere gives the same
// result.
//
// Commands of a batch share one transaction. A command's refusal does not
// roll the transaction back, so every command checks everything that can
// refuse it before it writes anything; only an I/O error (which fails the
// whole batch) may come after a write.

// applyBatch applies envs in one transaction, numbering them from the
// log position after the database's last (the single-node log).
func (s *Store) applyBatch(envs []Envelope) Batch { return s.apply(envs, nil) }

// ErrGap means commands are missing: a replicated log handed over a
// position past the one after the database's last.
var ErrGap = errors.New("commands are missing from the log")

// ApplyLogged applies commands at the positions a replicated log gave
// them (seqs[i] is envs[i]'s), in one transaction. Several commands may
// share a position (one log entry carrying a batch of commands); they
// must then be given together, in order. A command at or before the
// database's position was applied already and is skipped, so a replayed
// command never applies twice; one past the next position fails the
// batch with ErrGap.
func (s *Store) ApplyLogged(envs []Envelope, seqs []uint64) Batch { return s.apply(envs, seqs) }

// apply applies envs in one transaction, at seqs or (nil) numbered on
// from the database's position. It never returns a partial result: on a
// failed commit the batch carries the error instead.
func (s *Store) apply(envs []Envelope, seqs []uint64) Batch {
	out := Batch{Applied: make([]Applied, 0, len(envs))}
	start := time.Now()
	err := s.safeUpdate(func(tx *bolt.Tx) error {
		a := newApplier(tx, s)
		last := appliedSeq(tx)
		var current uint64 // the position being applied in this transaction
		for i, env := range envs {
			seq := last + 1
			if seqs != nil {
				switch {
				case seqs[i] == current:
					seq = current // the rest of a log entry's batch
				case seqs[i] <= last:
					continue // applied before
				case seqs[i] > last+1:
					return fmt.Errorf("%w: want position %d, got %d", ErrGap, last+1, seqs[i])
				}
				current = seq
			}
			ap := Applied{Seq: seq, Env: env}
			ap.Outcome, ap.Events = a.apply(env)
			if a.failed != nil {
				return a.failed
			}
			out.Applied = append(out.Applied, ap)
			last = seq
		}
		if err := a.finish(); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, u64key(last))
	})
	out.Committed = time.Now()
	out.Took = out.Committed.Sub(start)
	if err != nil {
		out.Err = fmt.Errorf("%w: commit %d commands: %w", ErrUnavailable, len(envs), err)
		out.Applied = out.Applied[:0]
		for i, env := range envs {
			if seqs == nil || i < len(seqs) {
				out.Applied = append(out.Applied, Applied{Env: env, Outcome: Outcome{Err: out.Err}})
			}
		}
	}
	return out
}

// safeUpdate is db.Update for the writer: a panic from a corrupted page
// fails the batch instead of killing the writer, which would leave every
// proposer waiting forever.
func (s *Store) safeUpdate(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write transaction: %v", r)
		}
	}()
	return s.db.Update(fn)
}

// applier applies the commands of one transaction. What many commands of
// a batch touch alike (a room's record, a sender's read marker) is read
// once, changed in memory, and written once by finish; every read of
// those goes through the cache so no command sees a stale copy.
type applier struct {
	tx     *bolt.Tx
	store  *Store    // only to report damaged records
	now    time.Time // the current envelope's time
	rooms  map[string]*roomRecord
	dirty  map[string]bool // rooms to write
	reads  map[roomReadKey]uint64
	events []Event
	failed error // an I/O error: the whole batch fails
}

type roomReadKey struct {
	user uint64
	room string
}

func newApplier(tx *bolt.Tx, s *Store) *applier {
	return &applier{tx: tx, store: s, rooms: map[string]*roomRecord{}, dirty: map[string]bool{}, reads: map[roomReadKey]uint64{}}
}

// apply runs one command and returns its outcome and events.
func (a *applier) apply(env Envelope) (Outcome, []Event) {
	a.now = env.Time.UTC()
	a.events = nil
	out, err := a.dispatch(env.Cmd)
	if err != nil {
		var refusal bool
		out, refusal = Outcome{Err: err}, isRefusal(err)
		if !refusal {
			a.failed = err
			return out, nil
		}
		// A refused command changes nothing, so it tells nobody.
		return out, nil
	}
	return out, a.events
}

// emit records an event of the command being applied; what it says of a
// room is kept in the room's history too.
func (a *applier) emit(e Event) {
	a.events = append(a.events, e)
	if err := a.recordRoomEvents(e); err != nil && a.failed == nil {
		a.failed = err
	}
}

// isRefusal tells a command's refusal from an I/O failure.
func isRefusal(err error) bool {
	var muted *MutedError
	var forbidden *ForbiddenError
	if errors.As(err, &muted) || errors.As(err, &forbidden) {
		return true
	}
	for _, r := range []error{ErrNotFound, ErrUsernameTaken, ErrSuspended, ErrTooManyRooms, ErrTooManyInvites, ErrCreateNotAllowed,
		ErrBanned, ErrPrivateRoom, ErrNotAllowed, ErrNotMember, ErrTargetNotMember, ErrAlreadyMember, ErrNotBanned,
		ErrRoomNotFound, ErrParentNotFound, ErrFileNotFound, ErrQuotaExceeded, ErrTooManyReactions, errBadCommand,
		ErrGuestNameInUse, ErrInviteRequired, ErrInviteInvalid, ErrRoomFull, ErrTooMany} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// errBadCommand refuses a command whose fields make no sense; handlers
// validate first, so it means a bug or a hand-made command.
var errBadCommand = errors.New("malformed command")

func (a *applier) dispatch(cmd Command) (Outcome, error) {
	switch c := cmd.(type) {
	case CreateUser:
		return a.createUser(c)
	case IssueToken:
		return a.issueToken(c)
	case RevokeToken:
		return a.revokeToken(c)
	case SetPassword:
		return a.setPassword(c)
	case CreateResetLink:
		return a.createResetLink(c)
	case RedeemResetLink:
		return a.redeemResetLink(c)
	case SetAdmin:
		return a.setAdmin(c)
	case DeleteUser:
		return a.deleteUser(c)
	case SuspendUser:
		return a.suspendUser(c)
	case JoinRoom:
		return a.joinRoom(c)
	case LeaveRoom:
		return a.leaveRoom(c)
	case Invite:
		return a.invite(c)
	case Kick:
		return a.kick(c)
	case Ban:
		return a.ban(c)
	case Unban:
		return a.unban(c)
	case Mute:
		return a.mute(c)
	case Unmute:
		return a.unmute(c)
	case SetRole:
		return a.setRole(c)
	case SetTopic:
		return a.setTopic(c)
	case PostMessage:
		return a.postMessage(c)
	case EditMessage:
		return a.editMessage(c)
	case DeleteMessage:
		return a.deleteMessage(c)
	case React:
		return a.react(c)
	case MarkRead:
		return a.markRead(c)
	case PutFile:
		return a.putFile(c)
	case Expire:
		return a.expire()
	case TrimOlderThan:
		return a.trimOlderThan(c)
	case CreateGuest:
		return a.createGuest(c)
	case EndGuest:
		return a.endGuest(c)
	case CreateInviteLink:
		return a.createInviteLink(c)
	case RevokeInviteLink:
		return a.revokeInviteLink(c)
	case CreateBot:
		return a.createBot(c)
	case CreateHook:
		return a.createHook(c)
	case DeleteHook:
		return a.deleteHook(c)
	case CreateGroup:
		return a.createGroup(c)
	case SetVAPIDKeys:
		return a.setVAPIDKeys(c)
	case AddPushSubscription:
		return a.addPushSubscription(c)
	case RemovePushSubscription:
		return a.removePushSubscription(c)
	case SetNotifyLevel:
		return a.setNotifyLevel(c)
	case nil:
		return Outcome{}, fmt.Errorf("%w: no command", errBadCommand)
	}
	return Outcome{}, fmt.Errorf("%w: unknown command %T", errBadCommand, cmd)
}

// room returns a room's record through the batch's cache.
func (a *applier) room(id string) (*roomRecord, error) {
	if r := a.rooms[id]; r != nil {
		return r, nil
	}
	rec, err := getRoom(a.tx, id)
	if err != nil {
		return nil, err
	}
	a.rooms[id] = &rec
	return &rec, nil
}

// putRoom records a room's record as changed (or new); finish writes it.
func (a *applier) putRoom(id string, rec *roomRecord) {
	a.rooms[id] = rec
	a.dirty[id] = true
}

// setRoomRead moves a read marker forward, through the batch's cache.
func (a *applier) setRoomRead(user uint64, roomID string, seq uint64) {
	k := roomReadKey{user, roomID}
	if seq > a.reads[k] {
		a.reads[k] = seq
	}
}

// finish writes what the batch's commands changed in common.
func (a *applier) finish() error {
	rooms := a.tx.Bucket(bucketRooms)
	for id := range a.dirty {
		if err := putJSON(rooms, []byte(id), a.rooms[id]); err != nil {
			return err
		}
	}
	for k, seq := range a.reads {
		if err := setRoomRead(a.tx, k.user, k.room, seq); err != nil {
			return err
		}
	}
	return nil
}

func setRoomRead(tx *bolt.Tx, user uint64, roomID string, seq uint64) error {
	mine, err := tx.Bucket(bucketRoomReads).CreateBucketIfNotExists(u64key(user))
	if err != nil {
		return err
	}
	if v := mine.Get([]byte(roomID)); v != nil && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	return mine.Put([]byte(roomID), u64key(seq))
}

// user reads an account that exists; ErrNotFound otherwise.
func (a *applier) user(id uint64) (User, error) { return getUser(a.tx, id) }

func ref(u User) Ref { return Ref{ID: u.ID, Name: u.Name, Guest: u.Guest, Bot: u.Bot} }
