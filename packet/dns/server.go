package dns

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// Zones is a set of zones served together; a query goes to the zone whose
// origin encloses its name most closely.
type Zones struct {
	List     []*Zone          // by origin
	byOrigin map[string]*Zone // by lower-case wire-format origin
}

// LoadZones loads every file, and every *.zone file of each directory
// given (read again at each reload, so a file added there is served after a
// HUP); any error (syntax, semantics, two files for one origin, a directory
// without zone files) fails the whole set.
func LoadZones(paths []string) (*Zones, error) {
	files, err := zoneFiles(paths)
	if err != nil {
		return nil, err
	}
	zs := &Zones{byOrigin: map[string]*Zone{}}
	for _, f := range files {
		z, err := loadZoneSafe(f)
		if err != nil {
			return nil, err
		}
		if err := zs.add(z); err != nil {
			return nil, err
		}
	}
	zs.sortList()
	return zs, nil
}

// sortList puts List in origin order.
func (zs *Zones) sortList() {
	sort.Slice(zs.List, func(i, j int) bool { return zs.List[i].Origin < zs.List[j].Origin })
}

// zoneFiles expands each directory of paths into its *.zone files, in
// name order; files stay as given.
func zoneFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			files = append(files, p) // LoadZone reports what is wrong with it
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.zone"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("zone directory %s holds no *.zone file (name zone files ORIGIN.zone, or give the files one by one)", p)
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	return files, nil
}

// Server owns the zones every shard's Handler answers from. Reload swaps in
// a new set atomically: a query sees the old zones or the new, never a mix.
type Server struct {
	files []string
	zones atomic.Pointer[Zones]

	mu       sync.Mutex
	handlers []*Handler

	reloads      atomic.Uint64
	reloadErrors atomic.Uint64

	swapMu sync.Mutex   // serializes the writers of zones (Reload, swapZone)
	sec    *secondaries // nil: no secondary zones (EnableSecondaries)

	// Set before the handlers serve (EnableRRL, EnableCookies).
	rrl         *rrl // nil: no rate limiting
	cookiesOn   bool
	cookieKeys  atomic.Pointer[cookieSecrets]
	cookieClock func() uint32 // tests' clock; nil: the time
	primary     *primary      // transfers out and NOTIFY (EnablePrimary); nil: off
}

// EnableRRL turns on response rate limiting for every handler's UDP
// answers (c.Rate 0 leaves it off). Call it before the handlers serve.
func (s *Server) EnableRRL(c RRLConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Rate > 0 {
		s.rrl = newRRL(c)
	}
	return nil
}

// NewServer loads the zone files.
func NewServer(files []string) (*Server, error) {
	zs, err := LoadZones(files)
	if err != nil {
		return nil, err
	}
	s := &Server{files: files}
	s.zones.Store(zs)
	return s, nil
}

// Zones returns the zones being served.
func (s *Server) Zones() *Zones { return s.zones.Load() }

// NewHandler returns a handler for one shard; call it once per shard and
// transport (each has its own scratch space and counters).
func (s *Server) NewHandler(shard int) *Handler {
	h := &Handler{srv: s, shard: shard}
	s.mu.Lock()
	s.handlers = append(s.handlers, h)
	s.mu.Unlock()
	return h
}
