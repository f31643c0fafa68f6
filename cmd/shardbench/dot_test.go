package main

import (
	"strings"
	"testing"
)

// TestParseSTime: the rate of s_time's last pass and the reused marks.
func TestParseSTime(t *testing.T) {
	out := "Collecting connection statistics for 2 seconds\n*rrr\n\n4 connections in 0.01s; 400.00 connections/user sec, bytes read 0\n4 connections in 2 real seconds, 0 bytes read per connection\n"
	perS, frac, err := parseSTime([]byte(out))
	if err != nil || perS != 2 || frac != 0.75 {
		t.Fatalf("parseSTime: %v/s, reused %v, %v; want 2/s, 0.75", perS, frac, err)
	}
	if _, _, err := parseSTime([]byte("starting\nerror\n")); err == nil || !strings.Contains(err.Error(), "real seconds") {
		t.Fatalf("no rate line: %v", err)
	}
}

func FuzzParseSTime(f *testing.F) {
	f.Add([]byte("*r\n2 connections in 1 real seconds, 0 bytes read per connection\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		perS, frac, err := parseSTime(b)
		if err == nil && (perS <= 0 || frac < 0) {
			t.Fatalf("%v/s, reused %v from %q", perS, frac, b)
		}
	})
}
