package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestHelpAndFlagErrors: --help and -h print every flag to stdout and exit
// 0; a bad flag or size is a usage error (2) that quotes the input.
func TestHelpAndFlagErrors(t *testing.T) {
	defer func(w io.Writer) { stdout = w }(stdout)
	for _, arg := range []string{"--help", "-h"} {
		var out, stderr bytes.Buffer
		stdout = &out
		code := exitCode(run([]string{arg}), &stderr)
		if code != 0 || !strings.HasPrefix(out.String(), "Usage: shardbench") || stderr.Len() != 0 {
			t.Errorf("shardbench %s: exit %d, stdout %q, stderr %q", arg, code, out.String(), stderr.String())
		}
		for _, flag := range []string{"--out STRING", "--reps N", "--duration DURATION", "--sizes STRING", "--peer VALUE", "--dns-zero-rate N", "--syslog-rounds N"} {
			if !strings.Contains(out.String(), "  "+flag+" ") {
				t.Errorf("shardbench %s does not list %s:\n%s", arg, flag, out.String())
			}
		}
	}
	for _, tc := range []struct{ args, want string }{
		{"--nope", "shardbench: unknown flag --nope (see shardbench --help for the flags)"},
		{"--duration 2", `shardbench: --duration "2": missing unit, e.g. 2s`},
		{"--reps many", `shardbench: --reps "many": not a number`},
		{"stray", `shardbench: unexpected "stray"`},
		{"--xdp-queues 0", `shardbench: --xdp-queues "0": want queue counts from 1 to 64`},
		{"--xdp-queues 1,x", `shardbench: --xdp-queues "1,x": want queue counts from 1 to 64`},
	} {
		var stderr bytes.Buffer
		if code := exitCode(run(strings.Fields(tc.args)), &stderr); code != 2 || !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("shardbench %s: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestSizesTakeTheSizeSyntax: --sizes takes 1K and 1KiB as shardd's size
// flags do, and refuses what is out of range or unreadable.
func TestSizesTakeTheSizeSyntax(t *testing.T) {
	p, err := parsePlan("discard", "64,1k,1KiB")
	if err != nil || len(p.scenarios) != 3 || p.scenarios[1].Size != 1024 || p.scenarios[2].Size != 1024 {
		t.Fatalf("parsePlan: %+v, %v", p, err)
	}
	for _, bad := range []string{"8", "64K", "1x", ""} {
		if _, err := parsePlan("discard", bad); err == nil || !strings.Contains(err.Error(), "is not a size from 16 to 65507") {
			t.Errorf("--sizes %q: %v", bad, err)
		}
	}
}

// TestXDPQueuesFlag: --xdp-queues gives the veth layouts in order.
func TestXDPQueuesFlag(t *testing.T) {
	o, err := parseFlags([]string{"--xdp-queues", "2, 1"})
	if err != nil || len(o.queues) != 2 || o.queues[0] != 2 || o.queues[1] != 1 {
		t.Fatalf("--xdp-queues 2,1: %v, %v", o, err)
	}
	if o, err = parseFlags(nil); err != nil || len(o.queues) != 2 || o.queues[0] != 1 {
		t.Fatalf("default --xdp-queues: %v, %v", o, err)
	}
}
