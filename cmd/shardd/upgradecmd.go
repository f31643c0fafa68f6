package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// upgradePoll is how often shardd upgrade looks for the outcome.
const upgradePoll = 20 * time.Millisecond

// runUpgradeCommand is `shardd upgrade --pidfile FILE`: SIGUSR2 to the
// daemon whose pid FILE holds, then the outcome the daemon writes beside
// FILE (outcomePath): exit 0 and the new pid once the new process took
// over, exit 1 and the reason otherwise.
func runUpgradeCommand(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("upgrade")
	pidfile := fs.String("pidfile", "", "the file the daemon writes its pid to (its own --pidfile); required")
	timeout := fs.Duration("timeout", 3*upgradeReadyTimeout, "how long to wait for the outcome")
	if _, code, ok := parseCommandFlags(fs, args, 0, stdout, stderr); !ok {
		return code
	}
	switch {
	case *pidfile == "":
		fmt.Fprintln(stderr, "shardd upgrade: --pidfile FILE is required (the file the daemon was started with)")
		return exitUsage
	case *timeout <= 0:
		fmt.Fprintf(stderr, "shardd upgrade: --timeout %v: must be positive, e.g. 30s\n", *timeout)
		return exitUsage
	}
	msg, err := upgradeDaemon(*pidfile, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "shardd upgrade: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "shardd upgrade: %s\n", msg)
	return exitOK
}

// upgradeDaemon signals the daemon of pidfile and waits for the outcome.
func upgradeDaemon(pidfile string, timeout time.Duration) (string, error) {
	pid, pfi, err := readPid(pidfile)
	if err != nil {
		return "", err
	}
	path := outcomePath(pidfile)
	before, _ := os.Lstat(path) // an earlier upgrade's outcome, if any
	if err := signalUpgrade(pid); err != nil {
		return "", fmt.Errorf("signalling pid %d (from %s): %v", pid, pidfile, err)
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(upgradePoll) {
		alive := processAlive(pid)
		if line, ok := newOutcome(path, before, pfi); ok { // read after the liveness check: a daemon that wrote it and exited counts
			return outcomeResult(line, pid)
		}
		if !alive {
			return "", fmt.Errorf("process %d exited without reporting the upgrade's outcome; see its log", pid)
		}
	}
	return "", fmt.Errorf("no outcome from process %d within %v (see its log; an outcome is written to %s only by a daemon started with --pidfile %s)", pid, timeout, path, pidfile)
}

// readPid reads the pid pidfile holds, with the rules the daemon writes it
// by (readOwnFile: no link followed, no FIFO waited on, 512 bytes at most).
func readPid(pidfile string) (int, os.FileInfo, error) {
	b, fi, err := readOwnFile(pidfile)
	if err != nil {
		return 0, nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, nil, fmt.Errorf("%s does not hold a pid", pidfile)
	}
	return pid, fi, nil
}

// newOutcome returns the outcome line at path if a new one was written
// since before (each is a new file) by the pidfile's owner: another user
// who can write the directory (/tmp) must not be able to plant a success.
func newOutcome(path string, before, pidfile os.FileInfo) (string, bool) {
	b, fi, err := readOwnFile(path)
	if err != nil || (before != nil && os.SameFile(fi, before)) {
		return "", false
	}
	if want, ok := fileOwner(pidfile); ok {
		if got, ok := fileOwner(fi); !ok || got != want {
			return "", false
		}
	}
	return strings.TrimSpace(string(b)), true
}

// outcomeResult turns the daemon's outcome line into the command's result.
func outcomeResult(line string, oldPid int) (string, error) {
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "ok":
		newPid, err := strconv.Atoi(rest)
		if err != nil {
			break
		}
		if !processAlive(newPid) {
			return "", fmt.Errorf("new process %d took over from %d, but it no longer runs; see its log", newPid, oldPid)
		}
		return fmt.Sprintf("new process %d serves (it took over from %d)", newPid, oldPid), nil
	case "failed":
		return "", fmt.Errorf("the upgrade failed: %s", rest)
	case "refused":
		return "", fmt.Errorf("the upgrade was refused: %s", rest)
	}
	return "", errors.New("unreadable upgrade outcome " + strconv.Quote(line))
}
