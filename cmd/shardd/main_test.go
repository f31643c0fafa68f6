package main

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// TestUsageErrors runs the command in-process: each bad input gets one line
// on stderr naming the problem and the fix, and exit code 2.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no address to listen on"},
		{[]string{"--bogus", ":5353"}, "unknown flag --bogus"},
		{[]string{"--handler", "nope", ":5353"}, "--handler \"nope\": want one of discard, dns, echo, syslog"},
		{[]string{"--proto", "sctp", ":5353"}, "--proto \"sctp\": want one of udp, tcp, udp,tcp"},
		{[]string{"--max-conns", "0", ":5353"}, "--max-conns 0: must be at least 1"},
		{[]string{"--steer", "cpu", "127.0.0.1:0"}, "--steer cpu: needs the shards pinned (add --pin"},
		{[]string{"--steer", "round-robin", "127.0.0.1:0"}, "--steer \"round-robin\": want one of hash, cpu, random"},
		{[]string{"--idle-timeout", "0s", ":5353"}, "--idle-timeout 0s: must be positive"},
		{[]string{"--idle-timeout", "soon", ":5353"}, "--idle-timeout \"soon\": want a duration"},
		{[]string{"--max-frame", "0", ":5353"}, "--max-frame 0: must be between 1 and 16777216"},
		{[]string{"--shards", "0", ":5353"}, "--shards 0: must be at least 1"},
		{[]string{"--shards", "-3", ":5353"}, "--shards -3: must be at least 1"},
		{[]string{"--shards", "two", ":5353"}, "--shards \"two\": not a number"},
		{[]string{"--batch", "0", ":5353"}, "--batch 0: must be between 1 and 1024"},
		{[]string{"--batch", "2000", ":5353"}, "--batch 2000: must be between 1 and 1024"},
		{[]string{"--max-packet", "70000", ":5353"}, "--max-packet 70000: must be between 1 and 65535"},
		{[]string{"--rcvbuf", "lots", ":5353"}, "--rcvbuf \"lots\": want a byte count"},
		{[]string{"--log-format", "xml", ":5353"}, "--log-format \"xml\": want one of console, json"},
		{[]string{"5353"}, `address "5353": not a HOST:PORT address`},
		{[]string{":99999"}, `address ":99999": port 99999 is out of range`},
		{[]string{":http"}, `address ":http": port "http" is not a number`},
		{[]string{"localhost:5353"}, `host "localhost" is not an IP address`},
		{[]string{"300.1.1.1:5353"}, `host "300.1.1.1" is not an IP address`},
		{[]string{":5353", ":5353"}, "address :5353 is given twice"},
		{[]string{"--pin", "--shards", "64", "127.0.0.1:0"}, "--pin needs one CPU per shard"},
		{[]string{"--shards"}, "flag --shards needs a value"},
		{[]string{"--max-packet", "0", ":5353"}, "--max-packet 0: must be between 1 and 65535"},
		{[]string{"--rcvbuf", "-5", ":5353"}, "--rcvbuf \"-5\": want a byte count"},
		{[]string{"--metrics", "bogus", ":5353"}, "--metrics bogus: want HOST:PORT"},
		{[]string{"--metrics", "127.0.0.1:0", "127.0.0.1:0", "localhost:53"}, `host "localhost" is not an IP address`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runBounded(t, tc.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			msg := stderr.String()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q does not contain %q", msg, tc.want)
			}
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "shardd: ") {
				t.Errorf("want exactly one line starting with \"shardd: \", got %q", msg)
			}
		})
	}
}

// runBounded runs the command in-process; if it starts serving instead of
// refusing the input, it is stopped after testkit.WaitTimeout and the test fails
// (a deadline only a daemon that serves reaches, not a slow refusal).
func runBounded(t *testing.T, args []string, stdout, stderr *bytes.Buffer) int {
	t.Helper()
	sig := make(chan os.Signal, 1)
	timer := time.AfterFunc(testkit.WaitTimeout, func() { sig <- syscall.SIGTERM })
	code := run(args, stdout, stderr, sig)
	if !timer.Stop() {
		t.Errorf("shardd %v started serving instead of refusing its input", args)
	}
	return code
}

func TestHelpAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("--help exit %d", code)
	}
	for _, flag := range []string{"--max-conns", "--idle-timeout", "--write-timeout", "--max-frame", "--drain-timeout", "--proto", "--shards", "--pin", "--handler", "--batch", "--rcvbuf", "--sndbuf", "--max-packet", "--metrics", "--log-level", "--log-format"} {
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("--help does not list %s", flag)
		}
	}
	if !strings.Contains(stdout.String(), "(default 64)") {
		t.Errorf("--help does not show defaults:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"--version"}, &stdout, &stderr, nil); code != exitOK || !strings.HasPrefix(stdout.String(), "shardd ") {
		t.Fatalf("--version: exit %d, %q", code, stdout.String())
	}
}

func TestByteSizeFlag(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "4194304": 4194304, "4M": 4 << 20, "512KiB": 512 << 10, "1G": 1 << 30, "2MiB": 2 << 20} {
		var b byteSize
		if err := b.Set(in); err != nil || int(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "4X", "M", "3G", "1.5M"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted as %d", in, b)
		}
	}
}

func TestInterspersedFlags(t *testing.T) {
	o, done, err := parseArgs([]string{":5353", "--shards", "3", "127.0.0.1:5353", "--handler=discard", "--", "[::1]:5353"}, &bytes.Buffer{})
	if err != nil || done {
		t.Fatalf("parseArgs: %v %v", done, err)
	}
	if o.shards != 3 || o.handler.value != "discard" || strings.Join(o.addrs, " ") != ":5353 127.0.0.1:5353 [::1]:5353" {
		t.Fatalf("parsed %+v", o)
	}
}
