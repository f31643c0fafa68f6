package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
)

// HostUDP holds the host's (network namespace's) UDP error counters for one
// address family. Drops caused by the global udp_mem limit show only here,
// never in a socket's own drop count.
type HostUDP struct {
	InDatagrams                                     uint64 // datagrams applications read
	NoPorts                                         uint64 // datagrams to a port nobody listens on
	InErrors, RcvbufErrors, SndbufErrors, MemErrors uint64
}

// ParseSNMP reads the "Udp:" header and value lines of /proc/net/snmp. It is
// shardd's one parser of that file: the collector's host counters and the
// benchmarks' loss accounting (shard/internal/perf) both read through it.
func ParseSNMP(b []byte) (HostUDP, error) {
	var header []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) == 0 || string(fields[0]) != "Udp:" {
			continue
		}
		if header == nil {
			header = make([]string, len(fields))
			for i, f := range fields {
				header[i] = string(f)
			}
			continue
		}
		if len(fields) != len(header) {
			return HostUDP{}, fmt.Errorf("snmp: Udp line has %d values for %d names", len(fields), len(header))
		}
		var h HostUDP
		for i := 1; i < len(fields); i++ {
			if err := h.set(header[i], string(fields[i])); err != nil {
				return HostUDP{}, err
			}
		}
		return h, nil
	}
	return HostUDP{}, fmt.Errorf("snmp: no Udp lines")
}

// ParseSNMP6 reads the "Udp6..." name/value lines of /proc/net/snmp6.
func ParseSNMP6(b []byte) (HostUDP, error) {
	var h HostUDP
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) != 2 || !bytes.HasPrefix(fields[0], []byte("Udp6")) {
			continue
		}
		if err := h.set(string(fields[0][len("Udp6"):]), string(fields[1])); err != nil {
			return HostUDP{}, err
		}
		found = true
	}
	if !found {
		return HostUDP{}, fmt.Errorf("snmp6: no Udp6 lines")
	}
	return h, nil
}

func (h *HostUDP) set(name, value string) error {
	dst := h.counter(name)
	if dst == nil {
		return nil
	}
	v, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return fmt.Errorf("snmp: %s: %w", name, err)
	}
	*dst = v
	return nil
}

// counter returns h's field for the kernel's counter name; nil for a
// counter HostUDP does not keep.
func (h *HostUDP) counter(name string) *uint64 {
	for _, c := range [...]struct {
		name string
		dst  *uint64
	}{
		{"InDatagrams", &h.InDatagrams}, {"NoPorts", &h.NoPorts}, {"InErrors", &h.InErrors},
		{"RcvbufErrors", &h.RcvbufErrors}, {"SndbufErrors", &h.SndbufErrors}, {"MemErrors", &h.MemErrors},
	} {
		if c.name == name {
			return c.dst
		}
	}
	return nil
}
