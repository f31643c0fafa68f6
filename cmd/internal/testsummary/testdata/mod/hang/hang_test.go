package hang

import (
	"testing"
	"time"
)

func TestQuick(t *testing.T) {}

// TestHangs outlives -timeout.
func TestHangs(t *testing.T) {
	t.Log("waiting forever")
	time.Sleep(time.Hour)
}
