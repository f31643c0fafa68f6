// Command testsummary runs go test -json with the arguments it is given and
// prints what go test prints without -v (build errors, each package's ok or
// FAIL line, the output of the tests that failed, crashed or timed out),
// then one line per failed test and per skipped test with its reason:
//
//	failed: TestX/case (github.com/shardd/shardd/shard)
//	skipped: TestY (github.com/shardd/shardd/cmd/shardd): needs root for SO_RCVBUFFORCE
//
// It exits with go test's exit code. make test runs it:
//
//	go run ./cmd/internal/testsummary -race -shuffle=on -count=1 -timeout 20m ./...
//
// $GO names the go command (default go).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run("", os.Args[1:], os.Stdout, os.Stderr))
}

// run runs go test -json args in dir, summarizes its stream on stdout and
// returns go test's exit code (1 if it could not run or died of a signal).
func run(dir string, args []string, stdout, stderr io.Writer) int {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	// An interrupt or TERM goes to go test, whose summary still follows;
	// this process stays until go test is done.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()

	s := newSummary(stdout)
	readErr := s.read(out)
	_, _ = io.Copy(io.Discard, out) // a read error must not block go test on a full pipe
	waitErr := cmd.Wait()
	s.report()
	if readErr != nil {
		fmt.Fprintln(stderr, "testsummary: reading go test's output:", readErr)
	}
	return exitCode(waitErr)
}

// exitCode is go test's exit status.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	return 1 // killed by a signal, or never ran
}
