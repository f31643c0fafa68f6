package metrics

import (
	"sync/atomic"
	"time"
)

// watchPeak samples measure every millisecond and records the largest value
// it returns until stop is called.
func watchPeak(measure func() int) (stop func() int) {
	var peak atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if n := int64(measure()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int { close(quit); <-done; return int(peak.Load()) }
}
