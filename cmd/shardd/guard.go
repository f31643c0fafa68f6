package main

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/metrics/fdlimit"
	"github.com/shardd/shardd/shard"
	"github.com/shardd/shardd/shard/sockinfo"
)

// guard looks for sockets on each listener's port that are not shardd's own
// (another process of the same user that joined the reuseport group, or a
// more specific bind that the kernel prefers; other users' binds are refused
// by the kernel, see TestAttackHijack) at start and then every
// interval. Each new one is logged once with pid, process and uid; the
// current number is shardd_foreign_sockets.
//
// A pass that cannot look (descriptor exhaustion, /proc unreadable) is
// logged once per listener and episode, counted in shardd_guard_errors_total,
// and the end of the episode is logged once.
type guard struct {
	groups []*shard.Group
	own    sockinfo.Inodes // every group's sockets: none is foreign to another
	counts []atomic.Int64
	seen   map[uint64]bool
	log    *zap.Logger
	failed []uint64 // failed passes in the current episode, by listener
	errors atomic.Uint64
}

func newGuard(groups []*shard.Group, log *zap.Logger) *guard {
	return &guard{groups: groups, own: ownInodes(groups), counts: make([]atomic.Int64, len(groups)), seen: map[uint64]bool{}, log: log, failed: make([]uint64, len(groups))}
}

// ownInodes is the set of the groups' sockets: what the guard and a later
// group's Listen (Config.Own) count as shardd's own, so that 0.0.0.0:53
// beside [::]:53 are not foreign to each other.
func ownInodes(groups []*shard.Group) sockinfo.Inodes {
	own := sockinfo.Inodes{}
	for _, g := range groups {
		own.Add(g.Inodes()...)
	}
	return own
}

// check scans once; it runs on one goroutine at a time.
func (g *guard) check() {
	for i, grp := range g.groups {
		foreign, notes, err := grp.ForeignSockets(g.own)
		if err != nil {
			g.errors.Add(1)
			g.failed[i]++
			if g.failed[i] == 1 {
				g.log.Warn("cannot look for foreign sockets; retrying every --guard-interval, logged once until it works again",
					append([]zap.Field{zap.String("addr", grp.Info().Addr), zap.Error(err)}, fdlimit.Fields(err)...)...)
			} else {
				g.log.Debug("guard pass failed again", zap.String("addr", grp.Info().Addr), zap.Uint64("failed_passes", g.failed[i]))
			}
			continue
		}
		if g.failed[i] > 0 {
			g.log.Info("looking for foreign sockets works again", zap.String("addr", grp.Info().Addr), zap.Uint64("failed_passes", g.failed[i]))
			g.failed[i] = 0
		}
		g.counts[i].Store(int64(len(foreign)))
		for _, s := range foreign {
			if g.seen[s.Inode] {
				continue
			}
			g.seen[s.Inode] = true
			pid, proc := 0, ""
			if len(s.PIDs) > 0 {
				pid, proc = s.PIDs[0], s.Comm
			}
			g.log.Warn("a socket that is not shardd's can take this listener's traffic",
				zap.String("addr", grp.Info().Addr), zap.String("proto", s.Proto), zap.Stringer("local", s.Local),
				zap.Int("pid", pid), zap.String("process", proc), zap.Int("uid", s.UID), zap.Uint64("inode", s.Inode),
				zap.Strings("notes", notes),
				zap.String("fix", "stop that process (the kernel lets only shardd's own user bind beside it); a later joiner of shardd's own group gets no UDP traffic under --exclusive with --steer random or cpu, but a more specific bind (e.g. 127.0.0.1 beside a wildcard) takes its address's traffic whatever shardd does"))
		}
	}
}

func (g *guard) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.check()
		}
	}
}
