//go:build !linux

package shard

import (
	"errors"
	"os"
	"strings"

	"github.com/shardd/shardd/metrics"
)

// AF_XDP is Linux's: elsewhere Config.XDP is refused at Listen.
type (
	xdpPort  struct{}
	xdpIface struct{}
)

func (g *Group) attachXDP() error {
	if len(g.cfg.XDP) == 0 {
		return nil
	}
	return &ConfigError{"XDP", strings.Join(g.cfg.XDP, ","), "AF_XDP sockets are Linux only", "drop XDP here"}
}

func (g *Group) detachXDP() {}

func (g *Group) xdpFiles(map[string]*os.File) error { return nil }

func (s *shard) runXDP() error { return errors.ErrUnsupported }

func (s *shard) xdpSnapshots(dst []metrics.Snapshot, _ string) []metrics.Snapshot { return dst }

func (s *shard) closeXDP() {}

func (s *shard) drainXDP() {}

// XDPAttachments lists the shardd programs attached to interfaces: none
// off Linux.
func XDPAttachments() ([]XDPAttachment, error) { return nil, errors.ErrUnsupported }
