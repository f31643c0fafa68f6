package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTCPLimitFlagsUsage: the TCP memory and per-address limits refuse
// values that could not work, naming the flags involved.
func TestTCPLimitFlagsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-conns-per-ip", "0", ":5353"}, "--max-conns-per-ip 0: must be at least 1"},
		{[]string{"--max-conn-memory", "64K", ":5353"}, "--max-conn-memory 65536: must hold one frame and one message's replies: at least 196877 with --max-frame 65535"},
		{[]string{"--max-frame", "1000000", "--max-conn-memory", "256K", ":5353"}, "--max-conn-memory 262144: must hold one frame and one message's replies: at least 3000272 with --max-frame 1000000"},
		{[]string{"--max-conn-memory", "0", ":5353"}, "--max-conn-memory 0: must be positive"},
		{[]string{"--max-shard-memory", "128K", ":5353"}, "--max-shard-memory 131072: must be at least --max-conn-memory 262144"},
		{[]string{"--max-shard-memory", "lots", ":5353"}, "--max-shard-memory \"lots\": want a byte count"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runBounded(t, tc.args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if msg := stderr.String(); !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", msg, tc.want)
			}
		})
	}
}
