//go:build !linux

package metrics

import "errors"

// ReadHostUDP is only implemented on Linux.
func ReadHostUDP() (v4, v6 HostUDP, err error) {
	return v4, v6, errors.ErrUnsupported
}
