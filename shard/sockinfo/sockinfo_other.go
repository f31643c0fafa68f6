//go:build !linux

package sockinfo

import (
	"errors"
	"net/netip"
)

var errNoProc = errors.New("listing sockets needs Linux (/proc/net)")

// Scan needs Linux's /proc.
func Scan(string, uint16) ([]Socket, []string, error) { return nil, nil, errNoProc }

// OnPort needs Linux's /proc.
func OnPort(uint16) ([]Socket, []string, error) { return nil, nil, errNoProc }

// Foreign needs Linux's /proc.
func Foreign(netip.AddrPort, []string, Inodes) ([]Socket, []string, error) {
	return nil, nil, errNoProc
}
