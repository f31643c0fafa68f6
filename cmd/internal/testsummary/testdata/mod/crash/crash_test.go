package crash

import "testing"

// TestGoroutinePanics crashes the test binary from a goroutine of its own:
// no test reports a result.
func TestGoroutinePanics(t *testing.T) {
	t.Log("starting a goroutine that panics")
	done := make(chan struct{})
	go func() { panic("boom in a goroutine") }()
	<-done
}
