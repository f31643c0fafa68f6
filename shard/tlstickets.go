package shard

// Session ticket keys: one set for every shard and TLS group of a process
// (they share one tls.Config), rotated on a schedule, and handed to the new
// process of an upgrade so that a client's ticket resumes there too.

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultTicketRotation is how often a new session ticket key is made.
const DefaultTicketRotation = time.Hour

// ticketKeysKept is how many keys decrypt tickets: the current one, which
// also encrypts, and the one before it. A ticket thus resumes for at least
// one rotation period after it was issued (and at most two).
const ticketKeysKept = 2

// ticketStateMagic starts the hand-over form of the keys (TicketKeys.State).
const ticketStateMagic = "shardd-tk1"

// ticketStateMax bounds the hand-over form: the magic, the time, the count
// and at most ticketKeysKept keys.
const ticketStateMax = len(ticketStateMagic) + 8 + 1 + ticketKeysKept*32

// TicketKeys are the session ticket keys of a tls.Config, newest first:
// the newest encrypts new tickets, all of them decrypt. They are secrets:
// nothing here logs them, and State is meant for a pipe to the new process
// of an upgrade, never a file or the environment.
type TicketKeys struct {
	conf *tls.Config
	mu   sync.Mutex
	keys [][32]byte
	made time.Time // when keys[0] was made
}

// NewTicketKeys gives conf a fresh random key (Go's own rotation of conf's
// keys stops: Rotate does it from now on).
func NewTicketKeys(conf *tls.Config) (*TicketKeys, error) {
	k := &TicketKeys{conf: conf}
	if err := k.Rotate(time.Now()); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate makes a new key the one that encrypts; the one before it still
// decrypts, older ones are dropped. now is when the new key counts as made.
func (k *TicketKeys) Rotate(now time.Time) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("session ticket key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := append([][32]byte{key}, k.keys...)
	k.set(keys[:min(len(keys), ticketKeysKept)], now)
	return nil
}

// set installs keys (newest first, at least one) made at made.
func (k *TicketKeys) set(keys [][32]byte, made time.Time) {
	k.keys, k.made = keys, made
	k.conf.SetSessionTicketKeys(keys)
}

// Made is when the key that encrypts new tickets was made.
func (k *TicketKeys) Made() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.made
}

// State is the keys and the time the newest was made, in the form Restore
// reads: for the new process of an upgrade.
func (k *TicketKeys) State() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := make([]byte, 0, ticketStateMax)
	b = append(b, ticketStateMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.made.UnixNano()))
	b = append(b, byte(len(k.keys)))
	for _, key := range k.keys {
		b = append(b, key[:]...)
	}
	return b
}

// Restore replaces the keys with those of state (from State, in the
// process before an upgrade), so tickets it issued resume here; the
// rotation schedule goes on from when its newest key was made.
func (k *TicketKeys) Restore(state []byte) error {
	keys, made, err := parseTicketState(state)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.set(keys, made)
	return nil
}

var errTicketState = errors.New("session ticket keys from the previous process: not in the form this version reads")

// parseTicketState reads State's form: the magic, the time the newest key
// was made (Unix nanoseconds, big endian), the number of keys (1 to
// ticketKeysKept) and the keys, 32 bytes each; nothing after them.
func parseTicketState(b []byte) ([][32]byte, time.Time, error) {
	head := len(ticketStateMagic) + 8 + 1
	if len(b) < head || string(b[:len(ticketStateMagic)]) != ticketStateMagic {
		return nil, time.Time{}, errTicketState
	}
	made := time.Unix(0, int64(binary.BigEndian.Uint64(b[len(ticketStateMagic):])))
	n := int(b[head-1])
	if n < 1 || n > ticketKeysKept || len(b) != head+32*n {
		return nil, time.Time{}, errTicketState
	}
	keys := make([][32]byte, n)
	for i := range keys {
		copy(keys[i][:], b[head+32*i:])
	}
	return keys, made, nil
}

// Run rotates the keys every interval, counted from when the newest was
// made (after an upgrade, in the process before), until stop closes.
// report gets a rotation that failed (no randomness): the keys in use stay.
func (k *TicketKeys) Run(interval time.Duration, stop <-chan struct{}, report func(error)) {
	for {
		wait := time.Until(k.Made().Add(interval))
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-stop:
			timer.Stop()
			return
		case now := <-timer.C:
			if err := k.Rotate(now); err != nil {
				report(err)
				k.mu.Lock()
				k.made = now // try again an interval later, not at once
				k.mu.Unlock()
			}
		}
	}
}
