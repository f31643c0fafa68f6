package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardd/shardd/cmd/internal/atomicfile"
	"github.com/shardd/shardd/metrics/fdlimit"
	"github.com/shardd/shardd/shard"
)

// Environment of a process started by an upgrade: the sockets it inherits
// (name=fd, comma-separated; names "L<listener>/udp/<shard>", ".../tcp/...",
// "metrics") and the pipe on which it reports that it serves.
const (
	envInherit  = "SHARDD_INHERIT"
	envReady    = "SHARDD_READY_FD"
	envUpgrades = "SHARDD_UPGRADES" // shardd_upgrades_total carried over: "ok=N,failed=N,refused=N"
	// The descriptor of a pipe that holds the TLS session ticket keys
	// (shard.TicketKeys.State): secrets, so never in the environment or a
	// file; the pipe's writing end is closed before the new process starts.
	envTicketKeys = "SHARDD_TICKET_KEYS_FD"
)

// ticketStateLimit bounds what is read from the ticket keys pipe.
const ticketStateLimit = 4096

// upgradeReadyTimeout bounds how long the old process waits for the new one.
const upgradeReadyTimeout = 10 * time.Second

// inherited is what a process started by an upgrade was handed.
type inherited struct {
	listeners map[int]map[string]*os.File // by listener index, then "udp/N"
	metrics   *os.File
	ready     *os.File
	// The TLS session ticket keys of the process before (nil if it sent
	// none): shard.TicketKeys.Restore reads them, and they are cleared.
	ticketKeys []byte
	// Why they could not be read: this process starts with new keys
	// (tickets issued before do not resume), and loadTLS logs it.
	ticketKeysErr error
}

// takeInherited reads the upgrade environment (and clears it, so it does not
// leak into a later upgrade's child).
func takeInherited() (*inherited, error) {
	spec := os.Getenv(envInherit)
	readyFD := os.Getenv(envReady)
	keysFD := os.Getenv(envTicketKeys)
	_ = os.Unsetenv(envInherit)
	_ = os.Unsetenv(envReady)
	_ = os.Unsetenv(envTicketKeys)
	if spec == "" && readyFD == "" {
		return nil, nil
	}
	in := &inherited{listeners: map[int]map[string]*os.File{}}
	if keysFD != "" {
		// Keys that cannot be read cost resumptions, not the upgrade.
		in.ticketKeys, in.ticketKeysErr = readTicketKeys(keysFD)
	}
	if err := in.addSockets(spec); err != nil {
		return nil, err
	}
	if readyFD != "" {
		var err error
		if in.ready, err = inheritedFD(envReady, readyFD, "ready"); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// inheritedFD is the descriptor fdText that the environment variable env
// names, as a file called name.
func inheritedFD(env, fdText, name string) (*os.File, error) {
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s: bad descriptor %q", env, fdText)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// addSockets takes the sockets envInherit names (name=fd, comma-separated).
func (in *inherited) addSockets(spec string) error {
	for _, item := range strings.Split(spec, ",") {
		if item == "" {
			continue
		}
		name, fdText, ok := strings.Cut(item, "=")
		fd, err := strconv.Atoi(fdText)
		if !ok || err != nil || fd < 3 {
			return fmt.Errorf("%s: bad entry %q", envInherit, item)
		}
		f := os.NewFile(uintptr(fd), name)
		if name == "metrics" {
			in.metrics = f
			continue
		}
		l, rest, ok := strings.Cut(name, "/")
		idx, err := strconv.Atoi(strings.TrimPrefix(l, "L"))
		if !ok || err != nil {
			return fmt.Errorf("%s: bad socket name %q", envInherit, name)
		}
		if in.listeners[idx] == nil {
			in.listeners[idx] = map[string]*os.File{}
		}
		in.listeners[idx][rest] = f
	}
	return nil
}

// readTicketKeys reads the ticket keys pipe named by fdText to its end. A
// descriptor that is no pipe is left alone, neither read nor closed: the
// variable may be stale, left by an older shardd between two upgrades that
// did not know it, and the number then another inherited descriptor's.
func readTicketKeys(fdText string) ([]byte, error) {
	if fd, err := strconv.Atoi(fdText); err == nil && fd >= 3 && !isPipe(fd) {
		return nil, fmt.Errorf("%s: descriptor %d is not a pipe (left by an older shardd?): not read", envTicketKeys, fd)
	}
	f, err := inheritedFD(envTicketKeys, fdText, "ticket-keys")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, ticketStateLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the session ticket keys: %w", envTicketKeys, err)
	}
	return b, nil
}

// signalReady tells the process that started us that we serve.
func (in *inherited) signalReady() {
	if in == nil || in.ready == nil {
		return
	}
	_, _ = in.ready.Write([]byte("ready\n"))
	_ = in.ready.Close()
}

// upgrader starts a new binary with this process's sockets. One at a time.
type upgrader struct {
	exe      string
	args     []string
	groups   []*shard.Group
	metrics  net.Listener
	log      *zap.Logger
	running  atomic.Bool
	results  map[string]*atomic.Uint64 // shardd_upgrades_total by result
	handover chan int                  // the new process's pid once it serves
	failed   chan struct{}             // an upgrade ended without a hand-over
	pidfile  string                    // rewritten with our pid when an upgrade fails
	tickets  *shard.TicketKeys         // handed over through a pipe; nil without --tls
}

func newUpgrader(exe string, args []string, groups []*shard.Group, metrics net.Listener, log *zap.Logger) *upgrader {
	u := &upgrader{exe: exe, args: args, groups: groups, metrics: metrics, log: log, handover: make(chan int, 1), failed: make(chan struct{}, 1),
		results: map[string]*atomic.Uint64{"ok": {}, "failed": {}, "refused": {}}}
	// The counts of the processes before this one, so the series goes on.
	for _, kv := range strings.Split(os.Getenv(envUpgrades), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && u.results[k] != nil {
				u.results[k].Store(n)
			}
		}
	}
	_ = os.Unsetenv(envUpgrades)
	return u
}

// outcome waits for an upgrade under way to end, and reports the new
// process's pid if it handed over. With none under way it returns at once.
func (u *upgrader) outcome() (int, bool) {
	select {
	case pid := <-u.handover:
		return pid, true
	default:
	}
	if !u.running.Load() {
		return 0, false
	}
	select {
	case pid := <-u.handover:
		return pid, true
	case <-u.failed:
		return 0, false
	case <-time.After(upgradeReadyTimeout + 5*time.Second):
		return 0, false
	}
}

// start runs one upgrade in the background; a second one while the first
// runs is refused.
func (u *upgrader) start() {
	if !u.running.CompareAndSwap(false, true) {
		u.results["refused"].Add(1)
		u.log.Warn("upgrade refused: another upgrade is in progress")
		u.report("refused another upgrade is in progress")
		return
	}
	go func() {
		pid, err := u.run()
		if err != nil {
			u.results["failed"].Add(1)
			u.log.Error("upgrade failed; this process keeps serving and a later upgrade can be tried", append([]zap.Field{zap.Error(err)}, fdlimit.Fields(err)...)...)
			if u.pidfile != "" { // the dead child may have written its pid
				_ = writePidfile(u.pidfile, os.Getpid())
			}
			u.report(fmt.Sprintf("failed %v; process %d keeps serving", err, os.Getpid()))
			u.running.Store(false)
			select {
			case u.failed <- struct{}{}:
			default:
			}
			return
		}
		u.results["ok"].Add(1)
		u.report(fmt.Sprintf("ok %d", pid))
		u.handover <- pid
	}()
}

// report writes an upgrade's outcome beside the pidfile for shardd upgrade
// to read (see outcomePath); without --pidfile there is no reader.
func (u *upgrader) report(outcome string) {
	if u.pidfile == "" {
		return
	}
	path := outcomePath(u.pidfile)
	if err := writeAtomic(path, []byte(outcome+"\n")); err != nil {
		u.log.Warn("cannot write the upgrade outcome for shardd upgrade", zap.String("file", path), zap.Error(err))
	}
}

// outcomePath is where a daemon with --pidfile FILE writes each upgrade's
// outcome, one line: "ok NEWPID", "failed REASON" or "refused REASON".
// It is replaced atomically (a new file each time) and never written
// through a symbolic link, as the pidfile is.
func outcomePath(pidfile string) string { return pidfile + ".upgrade" }

// run starts the new process with this process's sockets and waits until
// it reports that it serves: it returns the new process's pid.
func (u *upgrader) run() (int, error) {
	names, files, err := u.sockets()
	if err != nil {
		return 0, err
	}
	defer closeFiles(files)
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readyR.Close()
	defer readyW.Close()
	keysR, err := u.ticketPipe()
	if err != nil {
		return 0, err
	}
	if keysR != nil {
		defer keysR.Close()
		names, files = append(names, envTicketKeys), append(files, keysR)
	}
	pid, err := u.spawn(names, files, readyW)
	if err != nil {
		return 0, err
	}
	readyW.Close() // the child holds its own copy
	proc, _ := os.FindProcess(pid)
	u.log.Info("upgrade: new process started", zap.Int("pid", pid), zap.String("binary", u.exe))
	return awaitReady(proc, readyR)
}

// ticketPipe is a pipe that holds the session ticket keys, its writing
// end closed: the new process reads them to the end. Nil without --tls.
func (u *upgrader) ticketPipe() (*os.File, error) {
	if u.tickets == nil {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("the session ticket keys pipe: %w", err)
	}
	state := u.tickets.State()
	_, err = w.Write(state) // far less than a pipe holds: it does not block
	clear(state)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("the session ticket keys pipe: %w", err)
	}
	return r, nil
}

// sockets duplicates every socket the new process takes over, named as
// envInherit names them: each listener's in a fixed order, then the
// metrics listener.
func (u *upgrader) sockets() ([]string, []*os.File, error) {
	var names []string
	var files []*os.File
	fail := func(err error) ([]string, []*os.File, error) {
		closeFiles(files)
		return nil, nil, err
	}
	for i, g := range u.groups {
		socks, err := g.Files()
		if err != nil {
			return fail(fmt.Errorf("duplicating sockets: %w", err))
		}
		for _, k := range slices.Sorted(maps.Keys(socks)) {
			names = append(names, fmt.Sprintf("L%d/%s", i, k))
			files = append(files, socks[k])
		}
	}
	if tl, ok := u.metrics.(*net.TCPListener); ok {
		f, err := tl.File()
		if err != nil {
			return fail(fmt.Errorf("duplicating the metrics listener: %w", err))
		}
		names = append(names, "metrics")
		files = append(files, f)
	}
	return names, files, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// spawn starts the new binary with the sockets and the ready pipe, and the
// upgrade counts so far in its environment.
func (u *upgrader) spawn(names []string, files []*os.File, readyW *os.File) (int, error) {
	// The child gets descriptors 0-2 as ours, 3 the ready pipe, then the
	// sockets. os/exec would call File.Fd on each, and Fd switches the
	// descriptor to blocking mode: a flag the sockets' copies share, so this
	// process's own accept4 could then block. ForkExec takes raw numbers.
	fds := []uintptr{0, 1, 2}
	for _, f := range append([]*os.File{readyW}, files...) {
		fd, err := rawFD(f)
		if err != nil {
			return 0, err
		}
		fds = append(fds, fd)
	}
	var spec []string
	env := os.Environ()
	for i, n := range names {
		if n == envTicketKeys { // a pipe, not a socket
			env = append(env, fmt.Sprintf("%s=%d", envTicketKeys, 4+i))
			continue
		}
		spec = append(spec, fmt.Sprintf("%s=%d", n, 4+i))
	}
	counts := fmt.Sprintf("ok=%d,failed=%d,refused=%d", u.results["ok"].Load()+1, u.results["failed"].Load(), u.results["refused"].Load())
	env = append(env, envInherit+"="+strings.Join(spec, ","), envReady+"=3", envUpgrades+"="+counts)
	pid, err := forkExec(u.exe, append([]string{u.exe}, u.args...), env, fds)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", u.exe, err)
	}
	return pid, nil
}

// awaitReady waits up to upgradeReadyTimeout for the new process to report
// on readyR that it serves, and returns its pid. A process that dies, or
// does not report in time, is no hand-over (one that does not report is
// killed).
func awaitReady(proc *os.Process, readyR *os.File) (int, error) {
	pid := proc.Pid
	exited := make(chan error, 1)
	go func() {
		st, err := proc.Wait() // reaps the child if it dies early; it is ours
		if err == nil {
			err = fmt.Errorf("%v", st)
		}
		exited <- err
	}()
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := readyR.Read(buf)
		if n > 0 && strings.HasPrefix(string(buf[:n]), "ready") {
			ready <- nil
			return
		}
		ready <- fmt.Errorf("no ready signal: %v", err)
	}()
	select {
	case err := <-ready:
		if err == nil {
			select {
			case err := <-exited: // ready, and dead already: no hand-over
				return 0, fmt.Errorf("new process %d exited right after reporting ready: %v", pid, err)
			default:
				return pid, nil
			}
		}
		_ = proc.Kill()
		return 0, fmt.Errorf("new process %d: %w", pid, err)
	case err := <-exited:
		return 0, fmt.Errorf("new process %d exited before it was ready: %v", pid, err)
	case <-time.After(upgradeReadyTimeout):
		_ = proc.Kill() // the process we started
		return 0, fmt.Errorf("new process %d not ready within %v; killed", pid, upgradeReadyTimeout)
	}
}

// rawFD is f's descriptor number, without File.Fd's switch to blocking mode.
func rawFD(f *os.File) (uintptr, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		return 0, err
	}
	return fd, nil
}

// writePidfile writes pid to path atomically, so a reader never sees a
// half-written file, and never through a symbolic link (atomicfile.Write).
func writePidfile(path string, pid int) error {
	return writeAtomic(path, []byte(strconv.Itoa(pid)+"\n"))
}

// writeAtomic writes data to path as writePidfile does.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("--pidfile %w", err)
	}
	return nil
}

// checkPidfile refuses a pidfile path that is a symbolic link or not a
// regular file.
func checkPidfile(path string) error {
	if err := atomicfile.Check(path); err != nil {
		return fmt.Errorf("--pidfile %w", err)
	}
	return nil
}

// removePidfile removes path at exit if it is a regular file with one name
// (not a symbolic link, a FIFO or a hard link) that still holds pid, and
// with it the last upgrade's outcome (outcomePath), which no one waits for
// once the daemon is gone.
func removePidfile(path string, pid int) {
	b, fi, err := readOwnFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		return
	}
	removeIfSame(path, fi)
	if _, fi, err := readOwnFile(outcomePath(path)); err == nil {
		removeIfSame(outcomePath(path), fi)
	}
}

// removeIfSame removes path if it still names the file fi describes.
func removeIfSame(path string, fi os.FileInfo) {
	if cur, err := os.Lstat(path); err == nil && os.SameFile(fi, cur) {
		_ = os.Remove(path)
	}
}

// readOwnFile reads the first 512 bytes of path if it is a regular file
// with one name: not a symbolic link (not followed), a FIFO or a hard
// link, which are not files shardd wrote. It never blocks: the open is
// non-blocking (a FIFO planted there would otherwise wait for a writer).
func readOwnFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollowNonblock, 0)
	if err != nil {
		return nil, nil, err // gone, or a link someone put there
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if n, ok := linkCount(fi); !fi.Mode().IsRegular() || !ok || n != 1 {
		return nil, nil, fmt.Errorf("%s is not a regular file with one name", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 512))
	return b, fi, err
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
