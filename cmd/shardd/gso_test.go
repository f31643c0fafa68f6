package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/shardd/shardd/shard"
)

// TestGSOFlag: --gso reaches shard.Config (auto by default), and a bad
// value is a usage error naming the choices.
func TestGSOFlag(t *testing.T) {
	for args, want := range map[string]shard.Offload{"": shard.OffloadAuto, "--gso on": shard.OffloadOn, "--gso off": shard.OffloadOff, "--gso auto": shard.OffloadAuto} {
		o, _, err := parseArgs(append(strings.Fields(args), "127.0.0.1:0"), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if cfg, _ := o.shardConfig("127.0.0.1:0"); cfg.GSO != want {
			t.Errorf("%q: Config.GSO %v, want %v", args, cfg.GSO, want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runBounded(t, []string{"--gso", "sometimes", "127.0.0.1:0"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), `--gso "sometimes": want one of auto, on, off`) {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
