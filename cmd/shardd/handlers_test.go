package main

import (
	"flag"
	"strings"
	"testing"
)

// TestHandlerFlagsBelongToTheirHandler checks the ownership derived from
// the handlers table: every flag a handler adds is refused with each other
// handler, in words that name its owner, and the daemon's own flags belong
// to no handler.
func TestHandlerFlagsBelongToTheirHandler(t *testing.T) {
	_, owner := newFlagSet(&options{})
	owned := 0
	for _, h := range handlers {
		if h.flags == nil {
			continue
		}
		fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
		h.flags(fs, &options{})
		fs.VisitAll(func(f *flag.Flag) {
			owned++
			if owner[f.Name] != h.name {
				t.Errorf("--%s: owner %q, want %q", f.Name, owner[f.Name], h.name)
			}
			for _, other := range handlerNames() {
				if other == h.name {
					continue
				}
				o := &options{handler: choice{value: other}, given: map[string]bool{f.Name: true}}
				err := checkHandlerFlags(o, owner)
				want := "--" + f.Name + " is for --handler " + h.name
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("--handler %s --%s: error %v, want %q", other, f.Name, err, want)
				}
			}
		})
	}
	if owned == 0 {
		t.Fatal("no handler adds a flag: nothing was checked")
	}
	for _, name := range []string{"handler", "shards", "proto", "metrics"} {
		if o, ok := owner[name]; !ok || o != "" {
			t.Errorf("--%s: owner %q (known %v), want the daemon's own", name, o, ok)
		}
	}
}
