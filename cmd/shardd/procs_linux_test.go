//go:build linux

package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/shardd/shardd/cmd/internal/testkit"
)

// The daemon keeps one P more than its shard threads (TCP and UDP
// listeners alike), and GOMAXPROCS in the environment wins.
func TestSchedulerKeepsAProcSpare(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     string
		args    []string
		threads float64
		procs   float64
		from    string
	}{
		{"udp", "", []string{"--shards", "3", "127.0.0.1:0"}, 3, 4, "shards"},
		{"udp and tcp", "", []string{"--shards", "2", "--proto", "udp,tcp", "127.0.0.1:0"}, 4, 5, "shards"},
		{"environment", "1", []string{"--shards", "3", "127.0.0.1:0"}, 3, 1, "environment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(sharddBin(t), append([]string{"--log-format", "json"}, c.args...)...)
			cmd.Env = os.Environ()
			if c.env != "" {
				cmd.Env = append(cmd.Env, "GOMAXPROCS="+c.env)
			} else {
				cmd.Env = append(cmd.Env, "GOMAXPROCS=") // empty: the runtime's default, as when unset
			}
			d := testkit.Start(t, "shardd", cmd)
			line := d.WaitLine(t, "scheduler")
			if line["shard_threads"] != c.threads || line["gomaxprocs"] != c.procs || line["gomaxprocs_from"] != c.from {
				t.Errorf("scheduler line %v; want shard_threads %v, gomaxprocs %v, from %s", line, c.threads, c.procs, c.from)
			}
		})
	}
}
