package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

// An address no server can have is a usage error (exit 2, as every
// usageError: TestUsageErrors), found while parsing: parseFlags only, so
// even a broken check sends nothing to these addresses.
func TestTargetAddressUsageErrors(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"224.0.0.1:9", "target 224.0.0.1:9: a multicast address; want the server's unicast address"},
		{"[ff02::1]:9", "a multicast address"},
		{"255.255.255.255:9", "target 255.255.255.255:9: the broadcast address"},
		{"[fe80::1]:9", "target [fe80::1]:9: a link-local address needs its interface, e.g. [fe80::1%eth0]:5353"},
	} {
		cfg, err := parseFlags([]string{"--duration", "100ms", tc.target}, io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: config %v, error %v; want a usage error with %q", tc.target, cfg != nil, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"[fe80::1%lo]:9"}, io.Discard); err != nil {
		t.Errorf("a link-local address with its interface: %v", err)
	}
}

// What the network says (refused, no route) is a runtime failure, exit 1,
// however the flows found out.
func TestTargetErrorIsRuntime(t *testing.T) {
	target := netip.MustParseAddrPort("192.0.2.1:53")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "udp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, "target 192.0.2.1:53 is unreachable from this host: dial udp: connect: network is unreachable"},
		{&net.OpError{Op: "dial", Net: "udp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, "is unreachable from this host"},
		{&net.OpError{Op: "dial", Net: "udp6", Err: os.NewSyscallError("socket", syscall.EAFNOSUPPORT)}, "is unreachable from this host"},
		{errRefused, "target 192.0.2.1:53: connection refused: nothing listens on the target port: is the server running?"},
	} {
		err := targetError(target, tc.err)
		var ue *usageError
		if errors.As(err, &ue) || err.Error() != tc.want && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("targetError(%v) = %v (usage error: %v); want a runtime error with %q", tc.err, err, ue != nil, tc.want)
		}
	}
}

// When the server's kernel dropped what was lost, the summary says so.
func TestSummaryExplainsKernelDrops(t *testing.T) {
	s := &summary{Sent: 1000, DurationSec: 1, Server: &serverDelta{Received: 120, KernelDrops: 880}}
	s.setReceived(120)
	var out bytes.Buffer
	s.print(&out)
	if !strings.Contains(out.String(), "lost        880 (88.000%)\n            880 of them dropped by the server's kernel: its receive queues were full") {
		t.Errorf("summary:\n%s", out.String())
	}
	s = &summary{Sent: 1000, DurationSec: 1, Server: &serverDelta{Received: 1000}}
	s.setReceived(1000)
	out.Reset()
	s.print(&out)
	if strings.Contains(out.String(), "dropped by the server's kernel") {
		t.Errorf("a run without drops explains drops:\n%s", out.String())
	}
}
