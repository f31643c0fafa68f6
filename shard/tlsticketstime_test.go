package shard

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"testing"
	"time"
)

// TestTicketKeysRestoreFutureTime: a handed-over state whose newest key
// claims to be made in the future (a garbled state, or the clock stepped
// back between the processes) does not hold the rotation off until then:
// the key counts as made now, and Run rotates it an interval later.
func TestTicketKeysRestoreFutureTime(t *testing.T) {
	old, err := NewTicketKeys(&tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	state := old.State()
	binary.BigEndian.PutUint64(state[len(ticketStateMagic):], uint64(time.Now().Add(100*365*24*time.Hour).UnixNano()))
	k, err := NewTicketKeys(&tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := k.Restore(state); err != nil {
		t.Fatal(err)
	}
	if made := k.Made(); made.After(time.Now()) || made.Before(before) {
		t.Fatalf("restored key made %v; want now (between %v and %v)", made, before, time.Now())
	}
	restored := k.State()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); k.Run(50*time.Millisecond, stop, func(err error) { t.Error(err) }) }()
	defer func() { close(stop); <-done }()
	waitFor(t, "a rotation after the restore", func() bool { return !bytes.Equal(k.State(), restored) })
}
