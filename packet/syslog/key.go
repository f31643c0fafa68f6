package syslog

import "bytes"

// fromField is what AppendJSON writes before the sender's address, and
// what SourceKey looks for.
var fromField = []byte(`","from":"`)

// SourceKey returns the sender's IP address (without the port) of a line
// AppendJSON wrote, as a slice of line: the key that keeps one host's
// messages together (a Kafka partition). It returns nil for a line without
// the field. It does not allocate.
func SourceKey(line []byte) []byte {
	// The field follows "received", an RFC 3339 time: look past it only,
	// so that message text can never be taken for it.
	const window = len(`{"received":"2006-01-02T15:04:05.999999999Z`) + 1
	head := line[:min(len(line), window+len(fromField))]
	i := bytes.Index(head, fromField)
	if i < 0 {
		return nil
	}
	addr := line[i+len(fromField):]
	end := bytes.IndexByte(addr, '"')
	if end < 0 {
		return nil
	}
	addr = addr[:end]
	if len(addr) > 0 && addr[0] == '[' { // [v6%zone]:port
		if k := bytes.IndexByte(addr, ']'); k > 0 {
			return addr[1:k]
		}
		return nil
	}
	if k := bytes.LastIndexByte(addr, ':'); k >= 0 {
		return addr[:k]
	}
	return addr
}
