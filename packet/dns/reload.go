package dns

import (
	"fmt"
	"strings"
)

// ZoneFailure is one zone file a reload could not load.
type ZoneFailure struct {
	File string
	Err  error
	Kept *Zone // the version still served from File; nil if none was
}

// ReloadError lists the files a reload could not load. Each zone is
// swapped on its own: the others took their new versions.
type ReloadError struct{ Failures []ZoneFailure }

func (e *ReloadError) Error() string {
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = f.Err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Reload reads every zone file again (and the directories' lists of
// files) and swaps each zone on its own, as Knot DNS's zone-reload does:
// a file that fails keeps its zone's old version serving (if it had one)
// and is reported in a *ReloadError, while the others take their new
// versions. If no file loads, nothing changes and the zones returned are
// nil. Zones that did not come from a file (transferred) stay as they are,
// and a file giving a secondary zone's origin fails. This is the one
// reload path: swapZone (transfers) and Reload take turns on swapMu.
// Any failure counts in shardd_dns_zone_reload_errors_total, a reload
// without one in shardd_dns_zone_reloads_total.
func (s *Server) Reload() (*Zones, error) {
	files, err := zoneFiles(s.files)
	if err != nil {
		s.reloadErrors.Add(1)
		return nil, err
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	old := s.zones.Load()
	zs, rerr, loaded := s.loadFiles(files, old)
	for _, z := range old.List {
		if z.Source != "file" && zs.zone(z.Origin) == nil {
			_ = zs.add(z)
		}
	}
	if loaded == 0 && len(files) > 0 {
		s.reloadErrors.Add(1)
		return nil, rerr
	}
	zs.sortList()
	s.zones.Store(zs)
	s.announce(old, zs)
	if len(rerr.Failures) > 0 {
		s.reloadErrors.Add(1)
		return zs, rerr
	}
	s.reloads.Add(1)
	return zs, nil
}

// loadFiles loads each file into a new set of zones; a file that fails
// (or gives a secondary zone's origin) keeps its zone's version in old, if
// any, and is listed in the error. loaded counts the files that loaded.
func (s *Server) loadFiles(files []string, old *Zones) (zs *Zones, rerr *ReloadError, loaded int) {
	fromFile := map[string]*Zone{}
	for _, z := range old.List {
		if z.Source == "file" {
			fromFile[z.File] = z
		}
	}
	zs, rerr = &Zones{byOrigin: map[string]*Zone{}}, &ReloadError{}
	for _, f := range files {
		z, err := loadZoneSafe(f)
		if err == nil && s.isSecondary(z.Origin) {
			err = fmt.Errorf("zone %s: %s is a secondary zone (--secondary): give it as a file or as a secondary, not both", f, z.Origin)
		}
		if err == nil {
			err = zs.add(z)
		}
		if err == nil {
			loaded++
			continue
		}
		kept := fromFile[f]
		if kept != nil && zs.add(kept) != nil {
			kept = nil // its origin is taken by another file's zone now
		}
		rerr.Failures = append(rerr.Failures, ZoneFailure{File: f, Err: err, Kept: kept})
	}
	return zs, rerr, loaded
}

// announce calls zoneChanged for every zone whose version differs between
// old and new.
func (s *Server) announce(old, new *Zones) {
	for _, z := range new.List {
		if o := old.zone(z.Origin); o != z {
			s.zoneChanged(o, z)
		}
	}
	for _, o := range old.List {
		if new.zone(o.Origin) == nil {
			s.zoneChanged(o, nil)
		}
	}
}

// add adds z to the set, unless its origin is served already.
func (zs *Zones) add(z *Zone) error {
	wire, err := wireName(z.Origin)
	if err != nil {
		return fmt.Errorf("zone %s: origin %s: %v", z.File, z.Origin, err)
	}
	if o := zs.byOrigin[string(wire)]; o != nil {
		return fmt.Errorf("zone %s: %s is already served from %s (give each zone once)", z.File, z.Origin, o.File)
	}
	zs.byOrigin[string(wire)] = z
	zs.List = append(zs.List, z)
	return nil
}

// loadZoneSafe is LoadZone with a panic in loading turned into its error:
// a bug must not take down a server that is reloading.
func loadZoneSafe(f string) (z *Zone, err error) {
	defer func() {
		if p := recover(); p != nil {
			z, err = nil, fmt.Errorf("zone %s: internal error while loading: %v", f, p)
		}
	}()
	return LoadZone(f)
}
