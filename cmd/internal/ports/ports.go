// Package ports picks loopback ports for a server that binds them itself
// (a daemon under test, a peer started by the benchmark suite).
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// EphemeralLow is the first port of the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), 32768 when it cannot be read.
func EphemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	return low
}

// BelowEphemeral returns a port, between 10000 and the ephemeral range,
// that host (an IP, or "" for every address) has free for UDP, and for TCP
// too when tcp is set. It is picked below the ephemeral range on purpose: a
// port taken by a bind to port 0 and released could be handed to another
// program's bind to port 0 (a client, another test) before the server binds
// it; a port below the range never is.
func BelowEphemeral(host string, tcp bool) (int, error) {
	low := EphemeralLow()
	if low <= 10000 {
		return 0, fmt.Errorf("the ephemeral port range starts at %d: no port below it to pick (raise net.ipv4.ip_local_port_range)", low)
	}
	for try := 0; try < 100; try++ {
		port := 10000 + rand.IntN(low-10000)
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		if !tcp {
			u.Close()
			return port, nil
		}
		l, err := net.Listen("tcp", addr)
		u.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free below the ephemeral range (%d) after 100 tries", low)
}
