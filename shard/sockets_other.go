//go:build !linux

package shard

import "errors"

// SocketsOnPort needs Linux's /proc.
func SocketsOnPort(uint16) ([]Socket, []string, error) {
	return nil, nil, errors.New("listing sockets needs Linux (/proc/net)")
}

func socketsOnPort(port uint16, _ func(*Socket) bool) ([]Socket, []string, error) {
	return SocketsOnPort(port)
}
