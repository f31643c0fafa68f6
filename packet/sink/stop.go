package sink

import (
	"context"
	"sync"
)

// Stop is a sink writer's stop handshake: Close asks the writer to drain
// and end, and waits for it.
type Stop struct {
	Requested chan struct{}   // closed by the first Close
	Ctx       context.Context // the first Close's context, set before Requested is closed
	Done      chan struct{}   // closed by the writer when it has ended
	Err       error           // the writer's outcome, set before Done is closed
	once      sync.Once
}

// NewStop returns a Stop not yet requested.
func NewStop() *Stop {
	return &Stop{Requested: make(chan struct{}), Done: make(chan struct{})}
}

// Close asks the writer to stop (with ctx as its deadline, the first time)
// and returns its outcome once it has ended.
func (s *Stop) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.Ctx = ctx
		close(s.Requested)
	})
	<-s.Done
	return s.Err
}
