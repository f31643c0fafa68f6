package dns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
)

// notifier sends NOTIFY (RFC 1996) for zones whose serial changed: one
// round per change, to every target at once, each retried with a doubling
// timeout until it answers or the tries run out. A newer change of the
// same zone cancels the round still going for it. One log line per round.
type notifier struct {
	p      *primary
	mu     sync.Mutex
	rounds map[string]context.CancelFunc // by zone: the round in progress
	wg     sync.WaitGroup
	closed bool
}

func (n *notifier) init(p *primary) {
	n.p = p
	n.rounds = map[string]context.CancelFunc{}
}

// send starts a round for z's current version (nothing without targets).
func (n *notifier) send(z *Zone) {
	if len(n.p.cfg.Notify) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if cancel := n.rounds[z.Origin]; cancel != nil {
		cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.rounds[z.Origin] = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.round(ctx, z)
		n.mu.Lock()
		if ctx.Err() == nil {
			delete(n.rounds, z.Origin)
		}
		n.mu.Unlock()
		cancel()
	}()
}

// close cancels the rounds in progress and waits for them.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	for _, cancel := range n.rounds {
		cancel()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// round notifies every target of z's serial and logs the outcome.
func (n *notifier) round(ctx context.Context, z *Zone) {
	targets := n.p.cfg.Notify
	errs := make([]error, len(targets))
	tries := make([]int, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries[i], errs[i] = n.notifyOne(ctx, z, t)
		}()
	}
	wg.Wait()
	var acked, failed []string
	var problems []error
	for i, t := range targets {
		if errs[i] != nil {
			failed = append(failed, t.Addr.String())
			problems = append(problems, fmt.Errorf("%s: %w", t.Addr, errs[i]))
			continue
		}
		acked = append(acked, t.Addr.String())
	}
	fields := []zap.Field{zap.String("zone", z.Origin), zap.Uint32("serial", z.Serial),
		zap.Strings("acked", acked), zap.Strings("failed", failed), zap.Ints("tries", tries)}
	if len(problems) > 0 {
		n.p.log.Warn("NOTIFY round ended; some secondaries did not answer (they still refresh on the SOA timers)",
			append(fields, zap.Error(errors.Join(problems...)))...)
		return
	}
	n.p.log.Info("NOTIFY round ended", fields...)
}

// notifyOne sends NOTIFY for z to t until it answers, and returns the
// tries it took and the last error.
func (n *notifier) notifyOne(ctx context.Context, z *Zone, t NotifyTarget) (int, error) {
	m := new(mdns.Msg)
	m.SetNotify(z.Origin)
	m.Answer = []mdns.RR{z.soa} // the new serial, as a hint (RFC 1996 3.7)
	c := &mdns.Client{Net: "udp", TsigSecret: n.p.cfg.TSIG}
	timeout := n.p.cfg.NotifyTimeout
	var err error
	for try := 1; try <= n.p.cfg.NotifyTries; try++ {
		if ctx.Err() != nil {
			return try - 1, errors.New("cancelled by a newer version or the stop")
		}
		m.Id = mdns.Id()
		if t.Key != "" {
			m.Extra = nil
			m.SetTsig(t.Key, n.p.algorithm(t.Key), tsigFudge, time.Now().Unix())
		}
		c.Timeout = timeout
		var r *mdns.Msg
		r, _, err = c.ExchangeContext(ctx, m, t.Addr.String())
		if err == nil {
			if r.Rcode != mdns.RcodeSuccess {
				return try, fmt.Errorf("answered %s", rcodeName(r.Rcode))
			}
			return try, nil
		}
		timeout *= 2
	}
	return n.p.cfg.NotifyTries, err
}

// algorithm is the TSIG algorithm of key (HMAC-SHA256 unless the key file
// said otherwise).
func (p *primary) algorithm(key string) string {
	if a := p.cfg.TSIGAlgorithms[key]; a != "" {
		return a
	}
	return mdns.HmacSHA256
}
