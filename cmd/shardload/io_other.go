//go:build !linux

package main

import (
	"errors"
	"net"
)

const udpMaxSegments = 1

func enableGSO(*net.UDPConn, int) error { return errors.ErrUnsupported }

func disableGSO(*net.UDPConn) error { return nil }

func gsoRefused(error) bool { return false }
