package metrics

import "os"

// ReadHostUDP reads the host's UDP error counters for IPv4 and IPv6.
func ReadHostUDP() (v4, v6 HostUDP, err error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return v4, v6, err
	}
	if v4, err = ParseSNMP(b); err != nil {
		return v4, v6, err
	}
	b, err = os.ReadFile("/proc/net/snmp6")
	if err != nil { // IPv6 disabled: report IPv4 only
		return v4, v6, nil
	}
	v6, err = ParseSNMP6(b)
	return v4, v6, err
}
