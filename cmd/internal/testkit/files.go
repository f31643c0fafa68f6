package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shardd/shardd/cmd/internal/ports"
)

// ReadNDJSON reads a file of JSON objects, one a line, failing on a
// partial or corrupt line.
func ReadNDJSON(t testing.TB, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in a partial line", path)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: corrupt line %q: %v", path, sc.Bytes(), err)
		}
		out = append(out, m)
	}
	return out
}

// VictimText is what Victim writes.
const VictimText = "precious: not shardd's\n"

// Victim writes dir/victim, a file another user cares about that a daemon
// must never write (the target of a planted link), and returns its path.
func Victim(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "victim")
	if err := os.WriteFile(p, []byte(VictimText), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AssertUntouched fails the test if the victim file at path was written.
func AssertUntouched(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != VictimText {
		t.Errorf("the victim file %s was written: %q", path, b)
	}
}

// WaitPidfile waits until path holds the process's pid and a newline.
func (p *Process) WaitPidfile(t testing.TB, path string) string {
	t.Helper()
	pid := strconv.Itoa(p.Cmd.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(path); string(b) == pid+"\n" {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("pidfile %s never held %s:\n%s", path, pid, p.Stderr)
		}
	}
}

// FreeUDPPort returns a loopback UDP port below the ephemeral range that
// was free a moment ago (no bind to port 0 can take it afterwards), for a
// program that binds it itself. It skips the test if there is none.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	port, err := ports.BelowEphemeral("127.0.0.1", false)
	if err != nil {
		t.Skip(err)
	}
	return port
}

// FreePort is FreeUDPPort for a program that binds the port for both UDP
// and TCP (a DNS server).
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := ports.BelowEphemeral("127.0.0.1", true)
	if err != nil {
		t.Skip(err)
	}
	return port
}
