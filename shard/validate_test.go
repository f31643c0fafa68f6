package shard

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateNamesConfigFields: Validate refuses each bad setting with a
// *ConfigError naming the Config field, in the core's words (no CLI flag
// spelling), and accepts the zero Config plus an address.
func TestValidateNamesConfigFields(t *testing.T) {
	if err := (Config{Addr: ":0"}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	for field, c := range map[string]Config{
		"Shards":         {Shards: -1},
		"Batch":          {Batch: MaxBatch + 1},
		"MaxPacket":      {MaxPacket: 65536},
		"RcvBuf":         {RcvBuf: -2},
		"SndBuf":         {SndBuf: -1},
		"MaxConns":       {MaxConns: -1},
		"IdleTimeout":    {IdleTimeout: -time.Second},
		"WriteTimeout":   {WriteTimeout: -time.Second},
		"TCPShape":       {TCPShape: TCPShapeGoroutines + 1},
		"MaxFrame":       {MaxFrame: 1<<24 + 1},
		"MaxConnMemory":  {MaxFrame: 1 << 20, MaxConnMemory: 256 << 10}, // a default would follow MaxFrame
		"MaxShardMemory": {MaxShardMemory: 1024},
		"MaxConnsPerIP":  {MaxConnsPerIP: -1},
		"Steer":          {Steer: SteerCPU},
		"Addr":           {Addr: "localhost:53"},
	} {
		if c.Addr == "" {
			c.Addr = ":0"
		}
		var ce *ConfigError
		err := c.Validate()
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: %v, want a *ConfigError for %s", field, err, field)
			continue
		}
		if strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %q speaks in flag names", field, err)
		}
	}
}

func TestSteerAndTCPShapeSpelling(t *testing.T) {
	for _, s := range []Steer{SteerHash, SteerRandom, SteerCPU} {
		var got Steer = 99
		if err := got.UnmarshalText([]byte(s.String())); err != nil || got != s {
			t.Errorf("Steer %q: %v %v", s, got, err)
		}
	}
	if SteerHash.String() != "hash" || SteerRandom.String() != "random" || SteerCPU.String() != "cpu" {
		t.Errorf("Steer spellings changed: %v %v %v", SteerHash, SteerRandom, SteerCPU)
	}
	if TCPShapeLoop.String() != "loop" || TCPShapeGoroutines.String() != "goroutines" {
		t.Errorf("TCPShape spellings changed: %v %v", TCPShapeLoop, TCPShapeGoroutines)
	}
	for _, s := range []TCPShape{TCPShapeAuto, TCPShapeLoop, TCPShapeGoroutines} {
		var got TCPShape = 99
		if err := got.UnmarshalText([]byte(s.String())); err != nil || got != s {
			t.Errorf("TCPShape %q: %v %v", s, got, err)
		}
	}
	var st Steer
	var ce *ConfigError
	if err := st.UnmarshalText([]byte("round-robin")); !errors.As(err, &ce) || ce.Field != "Steer" {
		t.Errorf("unknown steering: %v", err)
	}
	if err := new(TCPShape).UnmarshalText([]byte("threads")); !errors.As(err, &ce) || ce.Field != "TCPShape" {
		t.Errorf("unknown shape: %v", err)
	}
}
