package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shardd/shardd/cmd/internal/tooltest"
)

// runDoc runs a documentation subcommand in-process and returns its stdout.
func runDoc(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb, nil); code != exitOK {
		t.Fatalf("shardd %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	if errb.Len() != 0 {
		t.Fatalf("shardd %s wrote to stderr: %q", strings.Join(args, " "), errb.String())
	}
	return out.String()
}

// subcommandFlags are each subcommand's flags as its --help lists them.
func subcommandFlags() map[string][]complFlag {
	m := map[string][]complFlag{}
	for _, c := range commands() {
		m[c.name] = commandFlags(c)
	}
	return m
}

// wantCommands are the subcommands the man page and completion must know.
var wantCommands = []string{"inspect", "upgrade", "check", "version", "help", "man", "completion"}

// TestManListsEveryFlag: the page documents every flag of the real flag
// sets, each handler's flags under its own heading, every subcommand and
// the sections a manual page needs, so it cannot drift from the binary.
func TestManListsEveryFlag(t *testing.T) {
	page := runDoc(t, "man")
	n := 0
	daemon, _ := newFlagSet(&options{})
	daemon.VisitAll(func(f *flag.Flag) {
		n++
		item := `\-\-` + f.Name
		if !strings.Contains(page, "\n.B "+item+"\n") && !strings.Contains(page, "\n.BI "+item+` "`) {
			t.Errorf("flag --%s is not an item of the man page", f.Name)
		}
		if !strings.Contains(page, roffEscape(f.Usage)) {
			t.Errorf("flag --%s: its usage text is not in the man page", f.Name)
		}
		if flagArg(f) == "VALUE" { // a flag.Func flag: name its value in funcFlagArgs
			t.Errorf("flag --%s: its value has no name in the man page or completion (add it to funcFlagArgs)", f.Name)
		}
	})
	sub := page[strings.Index(page, ".SH SUBCOMMANDS"):]
	for name, flags := range subcommandFlags() {
		if name == "check" { // takes the daemon's OPTIONS, checked above
			continue
		}
		section := sub[strings.Index(sub, "\n.B shardd "+name+"\n"):]
		if i := strings.Index(section[1:], "\n.B shardd "); i >= 0 {
			section = section[:i+1]
		}
		for _, f := range flags {
			n++
			if !strings.Contains(section, `\-\-`+f.name) || !strings.Contains(section, roffEscape(f.doc)) {
				t.Errorf("shardd %s --%s is not in its SUBCOMMANDS entry", name, f.name)
			}
		}
	}
	_, owner := newFlagSet(&options{})
	for _, h := range handlers {
		if h.flags == nil {
			continue
		}
		head := fmt.Sprintf(`.SS "With \-\-handler %s"`, h.name)
		i := strings.Index(page, head)
		if i < 0 {
			t.Errorf("no section for --handler %s", h.name)
			continue
		}
		for name, o := range owner {
			if o == h.name && !strings.Contains(page[i:], `\-\-`+name) {
				t.Errorf("--%s is not under %s", name, head)
			}
		}
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS", "SIGNALS", "EXIT STATUS", "FILES", "SEE ALSO"} {
		if !strings.Contains(page, "\n.SH "+sec+"\n") {
			t.Errorf("no %s section", sec)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	for _, c := range append(wantCommands, names...) {
		if !strings.Contains(sub, "\n.B shardd "+c+"\n") {
			t.Errorf("subcommand %s is not in SUBCOMMANDS", c)
		}
	}
	t.Logf("%d flags checked", n)
}

// TestManRenders: groff and man render the page without a warning.
func TestManRenders(t *testing.T) {
	groff := tooltest.Require(t, "groff")
	man := tooltest.Require(t, "man")
	path := filepath.Join(t.TempDir(), "shardd.8")
	if err := os.WriteFile(path, []byte(runDoc(t, "man")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{
		{groff, "-man", "-Tutf8", "-ww", path},
		{man, "--warnings", "-E", "UTF-8", "-l", path},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, errb.String())
		}
		if errb.Len() != 0 {
			t.Errorf("%s warns:\n%s", strings.Join(argv, " "), errb.String())
		}
		// The rendered text is the page: its flags and sections are there.
		text := out.String()
		for _, want := range []string{"SHARDD(8)", "--zone FILE", "--handler discard|dns|echo|syslog", "EXIT STATUS"} {
			if !strings.Contains(stripOverstrike(text), want) {
				t.Errorf("%s: rendered page lacks %q", argv[0], want)
			}
		}
	}
}

// stripOverstrike removes groff's backspace bolding ("x\bx") and the
// Unicode hyphen it may use, to compare rendered text with plain strings.
func stripOverstrike(s string) string {
	var b []rune
	for _, r := range s {
		if r == '\b' && len(b) > 0 {
			b = b[:len(b)-1]
			continue
		}
		b = append(b, r)
	}
	return strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(string(b))
}

// TestCompletionBash: bash accepts the script, and sourced it completes
// subcommands, every flag, choices and file names as the flags define them.
func TestCompletionBash(t *testing.T) {
	bash := tooltest.Require(t, "bash")
	dir := t.TempDir()
	script := filepath.Join(dir, "shardd.bash")
	if err := os.WriteFile(script, []byte(runDoc(t, "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	zone := filepath.Join(dir, "example.zone")
	if err := os.WriteFile(zone, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	daemon, _ := newFlagSet(&options{})
	var allFlags []string
	daemon.VisitAll(func(f *flag.Flag) { allFlags = append(allFlags, "--"+f.Name) })
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"shardd", ""}, commandNamesFor(t)},
		{[]string{"shardd", "ins"}, []string{"inspect"}},
		{[]string{"shardd", "--"}, allFlags},
		{[]string{"shardd", "--handler", ""}, handlerNames()},
		{[]string{"shardd", "--handler", "=", "d"}, []string{"discard", "dns"}},
		{[]string{"shardd", ":53", "--steer", "r"}, []string{"random"}},
		{[]string{"shardd", "--log-format", ""}, []string{"console", "json"}},
		{[]string{"shardd", "--zone", filepath.Join(dir, "ex")}, []string{zone}},
		{[]string{"shardd", "inspect", "--w"}, []string{"--watch"}},
		{[]string{"shardd", "upgrade", "--pid"}, []string{"--pidfile"}},
		{[]string{"shardd", "upgrade", "--pidfile", filepath.Join(dir, "ex")}, []string{zone}},
		{[]string{"shardd", "check", "--handler", "s"}, []string{"syslog"}},
		{[]string{"shardd", "help", "ins"}, []string{"inspect"}},
		{[]string{"shardd", "completion", ""}, []string{"bash", "zsh"}},
		{[]string{"shardd", "--shards", ""}, nil},
	}
	for _, c := range cases {
		quoted := make([]string, len(c.words))
		for i, w := range c.words {
			quoted[i] = fmt.Sprintf("%q", w)
		}
		prog := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _shardd; printf '%%s\n' "${COMPREPLY[@]}"`,
			script, strings.Join(quoted, " "), len(c.words)-1)
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.words, err, out)
		}
		got := strings.Fields(string(out))
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("completing %q: got %q, want %q", c.words, got, c.want)
		}
	}
}

// TestCompletionZsh: zsh parses the script (when zsh is installed), and it
// names every flag of the daemon and of inspect with its choices.
func TestCompletionZsh(t *testing.T) {
	script := runDoc(t, "completion", "zsh")
	daemon, _ := newFlagSet(&options{})
	for _, f := range daemonFlags(daemon) {
		spec := "--" + f.name
		if strings.Contains(f.arg, "|") {
			spec += "=[" // a value, and its choices
			if !strings.Contains(script, ":("+strings.ReplaceAll(f.arg, "|", " ")+")'") {
				t.Errorf("--%s: choices %s not offered", f.name, f.arg)
			}
		}
		if !strings.Contains(script, spec) {
			t.Errorf("flag --%s is not in the zsh completion", f.name)
		}
	}
	for name, flags := range subcommandFlags() {
		arm := script[strings.Index(script, "\n    "+name+")\n"):]
		arm = arm[:strings.Index(arm, ";;")]
		for _, f := range flags {
			if !strings.Contains(arm, "--"+f.name+"[") && !strings.Contains(arm, "--"+f.name+"=[") {
				t.Errorf("shardd %s --%s is not in its zsh completion", name, f.name)
			}
		}
	}
	for _, c := range wantCommands {
		if !strings.Contains(script, "\n    '"+c+":") {
			t.Errorf("command %s is not in the zsh completion", c)
		}
	}
	zsh := tooltest.Require(t, "zsh")
	path := filepath.Join(t.TempDir(), "_shardd")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
}

// commandNamesFor is every subcommand, in the table's order; the ones the
// issue asks for must be among them.
func commandNamesFor(t *testing.T) []string {
	names := strings.Fields(commandNames())
	for _, c := range wantCommands {
		if !slices.Contains(names, c) {
			t.Errorf("no subcommand %s", c)
		}
	}
	return names
}

// TestManCompletionUsageErrors: bad arguments are usage errors (exit 2)
// with one line naming what is wanted.
func TestManCompletionUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "fish"}, {"completion", "bash", "zsh"}, {"man", "extra"}} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb, nil)
		if code != exitUsage || out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("shardd %v: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", args, code, out.String(), errb.String())
		}
	}
}
