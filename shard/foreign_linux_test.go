package shard

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shardd/shardd/shard/sockinfo"
)

// TestGroupsSideBySideAreNotForeign: 0.0.0.0:P and [::]:P in one process
// overlap (an IPv6 wildcard may take IPv4 traffic); each group's sockets are
// foreign to the other only until the caller passes them as its own, both
// for steering at Listen (Config.Own) and for ForeignSockets (the guard).
func TestGroupsSideBySideAreNotForeign(t *testing.T) {
	v4 := startGroup(t, Config{Addr: "0.0.0.0:0", Shards: 2, UDP: true, TCP: true})
	port := groupPort(v4)
	cfg := Config{Addr: fmt.Sprintf("[::]:%d", port), Shards: 2, UDP: true, TCP: true, Steer: SteerRandom, Exclusive: true}
	_, err := Listen(cfg)
	var le *ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "already has sockets of other processes") {
		t.Fatalf("[::]:%d with steering beside 0.0.0.0:%d, without Own: %v, want a refusal", port, port, err)
	}
	cfg.Own = sockinfo.Inodes{}
	cfg.Own.Add(v4.Inodes()...)
	v6 := startGroup(t, cfg)
	if n := len(v6.Inodes()); n != 4 {
		t.Fatalf("the [::] group has %d inodes, want 4 (2 UDP, 2 TCP)", n)
	}
	// Without the other group's inodes each reports the other's 4 sockets
	// (2 UDP, 2 TCP): the check can see them...
	for _, tc := range []struct {
		name     string
		g, other *Group
	}{{"0.0.0.0", v4, v6}, {"[::]", v6, v4}} {
		foreign, _, err := tc.g.ForeignSockets(nil)
		if err != nil || len(foreign) != 4 {
			t.Fatalf("%s without own: %d foreign (%v), want 4: %s", tc.name, len(foreign), err, sockinfo.Describe(foreign))
		}
		// ...and with them, none.
		own := sockinfo.Inodes{}
		own.Add(tc.other.Inodes()...)
		if foreign, _, err := tc.g.ForeignSockets(own); err != nil || len(foreign) != 0 {
			t.Fatalf("%s with the other group as own: %v %s", tc.name, err, sockinfo.Describe(foreign))
		}
	}
}
