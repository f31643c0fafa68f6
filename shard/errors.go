package shard

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrGroupClosed is returned by Serve on a group that was closed;
// errors.Is(err, net.ErrClosed) holds for it.
var ErrGroupClosed = fmt.Errorf("shard: group closed: %w", net.ErrClosed)

// errBadDestination is a reply address the socket cannot send to: port 0,
// or an IPv6 destination on an IPv4 socket.
var errBadDestination = errors.New("reply destination unusable on this socket (port 0 or wrong address family)")

// ListenError is a failure to bind a shard's socket: a runtime error, not a
// usage error (the daemon exits 1).
type ListenError struct {
	Addr  string // as configured
	Shard int
	Err   error
	Hint  string // what the operator can do about it, if known; Config fields by name
}

func (e *ListenError) Error() string {
	msg := fmt.Sprintf("cannot listen on %s (shard %d): %v", e.Addr, e.Shard, e.Err)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *ListenError) Unwrap() error { return e.Err }

// bindHint explains a bind failure the way an operator can act on it.
func bindHint(err error, port uint16) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("the port is held by a socket without SO_REUSEPORT or by another user's process; find it with: ss -uapn 'sport = :%d'", port)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep shardd), or pick a port from 1024 up"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no interface on this host has that address; check `ip addr`, or listen on :PORT"
	case errors.Is(err, syscall.EAFNOSUPPORT):
		return "this host does not support that address family (is IPv6 disabled?)"
	}
	return ""
}
