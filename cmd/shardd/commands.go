package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/shardd/shardd/cmd/internal/cli"
)

// command is a subcommand: the first word of the command line when it is
// not a flag or an ADDR.
type command struct {
	name    string
	usage   string // the arguments after "shardd NAME"
	summary string // one line for shardd --help
	about   string // what shardd NAME --help adds under the usage line
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order --help shows them; a new one
// is one entry here.
func commands() []command {
	return []command{
		{"check", "[flags] ADDR [ADDR...]", "check a command line without serving (exit 0 ok, 1 runtime problem, 2 usage error)",
			"Parses the flags and ADDRs of a serving command line, checks the settings, loads the\n--zone files, opens the --sink without creating it and checks the --pidfile path, like\nnginx -t; it binds nothing. Exit codes: 0 all good, 1 a runtime problem (a zone that does\nnot load, a sink that cannot be opened), 2 a usage error.", runCheck},
		{"inspect", "[--json] [--watch [--interval 1s] [--count N]] [--metrics URL] ADDR", "list every socket on ADDR's port, with owners, queues and drops",
			"Lists every UDP and TCP socket bound to ADDR's port (ADDR: :PORT, IP:PORT or PORT).", runInspectCommand},
		{"upgrade", "--pidfile FILE [--timeout 30s]", "replace the running daemon's binary without dropping traffic; waits for the outcome",
			"Sends USR2 to the daemon whose pid FILE holds (the daemon's own --pidfile), and waits\nfor the outcome: exit 0 and the new process's pid once it took over, else exit 1 and\nthe reason (the old process keeps serving).", runUpgradeCommand},
		{"version", "", "print the version, commit and Go version (also --version)", "", runVersion},
		{"help", "[COMMAND]", "print this help, or a command's (also --help, or COMMAND --help)", "", runHelp},
		{"man", "", "print the manual page shardd(8), made from these flags", "Read it with: shardd man | man -l -", runMan},
		{"completion", "bash|zsh", "print the bash or zsh completion script",
			"Install: shardd completion bash > /etc/bash_completion.d/shardd, or\nshardd completion zsh > /usr/local/share/zsh/site-functions/_shardd", runCompletion},
	}
}

// commandNamed returns the subcommand called name.
func commandNamed(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandWord matches a first argument that can only be meant as a command:
// a word, where an ADDR has a colon and a flag a dash.
var commandWord = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// runSubcommand runs the subcommand args[0] names; ok is false when
// args[0] is a flag or an ADDR, which the daemon's own parsing takes.
func runSubcommand(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	if c, found := commandNamed(args[0]); found {
		return c.run(args[1:], stdout, stderr), true
	}
	if commandWord.MatchString(args[0]) {
		fmt.Fprintf(stderr, "shardd: unknown command %q; the commands are %s (or give an ADDR to serve, e.g. shardd :5353)\n", args[0], commandList())
		return exitUsage, true
	}
	return 0, false
}

func commandList() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// runHelp is `shardd help [COMMAND]`.
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		o := &options{}
		fs, _ := newFlagSet(o)
		printUsage(stdout, fs)
		return exitOK
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		printCommandUsage(stdout, "help", newCommandFlags("help"))
		return exitOK
	case len(args) == 1:
		if c, ok := commandNamed(args[0]); ok {
			return c.run([]string{"--help"}, stdout, stderr)
		}
		fmt.Fprintf(stderr, "shardd help: unknown command %q; the commands are %s\n", args[0], commandList())
		return exitUsage
	}
	fmt.Fprintln(stderr, "shardd help: want at most one COMMAND, e.g. shardd help check")
	return exitUsage
}

// newCommandFlags is the flag set of subcommand name.
func newCommandFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("shardd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseCommandFlags parses a subcommand's command line, which takes no
// positional arguments beyond want of them. After --help (printed to
// stdout) or a usage error (one line on stderr) ok is false: exit with code.
func parseCommandFlags(fs *flag.FlagSet, args []string, want int, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	pos, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, strings.TrimPrefix(fs.Name(), "shardd "), fs)
		return nil, exitOK, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), rewriteFlagError(fs, err))
		return nil, exitUsage, false
	}
	if len(pos) > want {
		fmt.Fprintf(stderr, "%s: unexpected %q (see %s --help)\n", fs.Name(), pos[want], fs.Name())
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// printCommandUsage is subcommand name's --help, with the flags of fs.
func printCommandUsage(w io.Writer, name string, fs *flag.FlagSet) {
	c, _ := commandNamed(name)
	fmt.Fprintf(w, "Usage: shardd %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		cli.PrintFlagsNamed(w, fs, flagArg)
	}
}

// printCommands lists the subcommands for shardd --help.
func printCommands(w io.Writer) {
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
}

// runInspectCommand is `shardd inspect`, which INT and TERM end.
func runInspectCommand(args []string, stdout, stderr io.Writer) int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	return runInspect(args, stdout, stderr, stop)
}
