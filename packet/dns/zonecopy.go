package dns

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
)

// checkZoneDir checks --zone-dir: a directory this user owns that no
// other user may write in.
func checkZoneDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("zone directory %s: %w (create it, owned by the daemon's user, mode 0750)", dir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("zone directory %s: not a directory", dir)
	}
	if err := checkOwnDir(fi); err != nil {
		return fmt.Errorf("zone directory %s: %v", dir, err)
	}
	return nil
}

// copyFileName is the file a zone's copy is kept in: its origin without
// the final dot, ".zone" added ("root.zone" for the root). Characters
// that could leave the directory are escaped.
func copyFileName(origin string) string {
	name := strings.TrimSuffix(origin, ".")
	if name == "" {
		name = "root"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '/' || c == '\\' || c == 0 || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String() + ".zone"
}

// copyPath is where z's copy is kept; "" without --zone-dir.
func (s *Server) copyPath(z *secondary) string {
	if s.sec.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(s.sec.cfg.Dir, copyFileName(z.origin))
}

// writeCopy writes zone nz to z's copy atomically: a new file beside it
// (created exclusively, no link followed), synced, then renamed over it.
func (s *Server) writeCopy(z *secondary, nz *Zone, from netip.AddrPort) (err error) {
	path := s.copyPath(z)
	if path == "" {
		return nil
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+hex.EncodeToString(rnd[:]))
	f, err := createNoFollow(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "; %s serial %d, transferred from %s at %s by shardd\n", nz.Origin, nz.Serial, from, s.sec.now().UTC().Format(time.RFC3339))
	fmt.Fprintln(w, nz.soa.String())
	_ = nz.eachRR(func(rr mdns.RR) error {
		_, err := fmt.Fprintln(w, rr.String())
		return err // the writer's error sticks: Flush returns it
	})
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// touchCopy marks z's copy as confirmed now (its modification time is the
// last refresh, read back at start to know when it expires).
func (s *Server) touchCopy(z *secondary) {
	path := s.copyPath(z)
	if path == "" {
		return
	}
	now := s.sec.now()
	if err := os.Chtimes(path, now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.sec.log.Warn("zone copy time not updated", zap.String("zone", z.origin), zap.Error(err))
	}
}

// loadCopy serves z's copy from --zone-dir, if there is one, at once; its
// modification time is its last refresh (so it may be expired already).
// A copy that does not load is logged and left: the first transfer
// replaces it.
func (s *Server) loadCopy(z *secondary) {
	path := s.copyPath(z)
	if path == "" {
		return
	}
	zone, mtime, err := readCopy(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return
	case err != nil:
		s.sec.log.Warn("zone copy not loaded; the zone is served after its first transfer", zap.String("zone", z.origin), zap.Error(err))
		return
	case zone.Origin != z.origin:
		s.sec.log.Warn("zone copy not loaded: it holds another zone", zap.String("zone", z.origin), zap.String("file", path), zap.String("holds", zone.Origin))
		return
	}
	z.lastRefresh.Store(mtime.UnixNano())
	z.live = zone
	s.swapZone(zone, "copy")
	s.sec.log.Info("zone copy loaded", zap.String("zone", z.origin), zap.String("file", path), zap.Uint32("serial", zone.Serial),
		zap.Int("records", zone.Count), zap.Time("refreshed", mtime))
	s.expireIfDue(z)
}

// readCopy loads a zone copy: a regular file this user owns, opened
// without following a link, read without $INCLUDE.
func readCopy(path string) (*Zone, time.Time, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if !fi.Mode().IsRegular() || !ownFile(fi) {
		return nil, time.Time{}, fmt.Errorf("%s: not a regular file this user owns", path)
	}
	z, err := parseZone(f, path, false)
	if err != nil {
		return nil, time.Time{}, err
	}
	return z, fi.ModTime(), nil
}
