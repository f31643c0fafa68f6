package testkit

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// Exchange sends one datagram to to and returns the reply and where it
// came from. The datagram is resent every second (one may meet a socket
// being handed over) until WaitTimeout, which only a hang reaches.
func Exchange(t testing.TB, network string, to netip.AddrPort, payload []byte) ([]byte, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(WaitTimeout); time.Now().Before(deadline); {
		_, _ = c.WriteToUDPAddrPort(payload, to)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
			return buf[:n], from
		}
	}
	t.Fatalf("no reply from %v within %v", to, WaitTimeout)
	return nil, netip.AddrPort{}
}

// DialTCP connects to addr, failing the test on an error; the connection
// is closed when the test ends, if the test has not closed it before.
func DialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
