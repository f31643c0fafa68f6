package main

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/shardd/shardd/shard/sockinfo"
)

// TestInspectTable pins the table shardd inspect prints: the optional RX
// column with --metrics, the per-second columns from the second --watch
// refresh on, and "-" for whatever is unknown.
func TestInspectTable(t *testing.T) {
	on := true
	rx, was := 250.0, 50.0
	list := []inspectedSocket{
		{Socket: sockinfo.Socket{Proto: "udp", Family: "ipv4", Local: netip.MustParseAddrPort("127.0.0.1:53"), State: "UNCONN",
			Inode: 11, UID: 0, User: "root", Drops: 30, RxQueue: 768, PIDs: []int{42}, Comm: "shardd", ReusePort: &on, Group: "udp-1"}, Received: &rx},
		{Socket: sockinfo.Socket{Proto: "tcp", Family: "ipv6", Local: netip.MustParseAddrPort("[::]:53"), Remote: netip.MustParseAddrPort("[::1]:40000"),
			State: "ESTABLISHED", Inode: 12, UID: 1000}, Flags: []string{"owner-unknown", "other-uid"}},
	}
	var first bytes.Buffer
	printSockets(&first, list, nil, nil, 0)
	want := `PROTO  LOCAL         REMOTE       STATE        INODE  USER  PID  PROCESS  RECV-Q  DROPS  REUSEPORT  GROUP  FLAGS                    RX
udp4   127.0.0.1:53  *            UNCONN       11     root  42   shardd   768     30     yes        udp-1  -                        250
tcp6   [::]:53       [::1]:40000  ESTABLISHED  12     1000  -    -        0       0      ?          -      owner-unknown,other-uid  -
`
	if first.String() != want {
		t.Errorf("first refresh:\n%s\nwant:\n%s", first.String(), want)
	}
	var watch bytes.Buffer
	prev := map[uint64]sockinfo.Socket{11: {Drops: 10}}
	printSockets(&watch, list, prev, map[uint64]float64{11: was}, 2*time.Second)
	want = `PROTO  LOCAL         REMOTE       STATE        INODE  USER  PID  PROCESS  RECV-Q  DROPS  REUSEPORT  GROUP  FLAGS                    RX   DROPS/s  RX/s
udp4   127.0.0.1:53  *            UNCONN       11     root  42   shardd   768     30     yes        udp-1  -                        250  10       100
tcp6   [::]:53       [::1]:40000  ESTABLISHED  12     1000  -    -        0       0      ?          -      owner-unknown,other-uid  -    -        -
`
	if watch.String() != want {
		t.Errorf("with rates:\n%s\nwant:\n%s", watch.String(), want)
	}
	var noRx bytes.Buffer
	printSockets(&noRx, list[1:], map[uint64]sockinfo.Socket{12: {}}, nil, time.Second)
	want = `PROTO  LOCAL    REMOTE       STATE        INODE  USER  PID  PROCESS  RECV-Q  DROPS  REUSEPORT  GROUP  FLAGS                    DROPS/s
tcp6   [::]:53  [::1]:40000  ESTABLISHED  12     1000  -    -        0       0      ?          -      owner-unknown,other-uid  0
`
	if noRx.String() != want {
		t.Errorf("rates without --metrics:\n%s\nwant:\n%s", noRx.String(), want)
	}
	var none bytes.Buffer
	printSockets(&none, nil, nil, nil, 0)
	if none.String() != "no sockets on this port\n" {
		t.Errorf("no sockets: %q", none.String())
	}
}
