package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// runMan is `shardd man`: shardd(8) in roff on stdout.
func runMan(args []string, stdout, stderr io.Writer) int {
	if _, code, ok := parseCommandFlags(newCommandFlags("man"), args, 0, stdout, stderr); !ok {
		return code
	}
	writeMan(stdout)
	return exitOK
}

// writeMan writes shardd(8): its OPTIONS come from newFlagSet, grouped by
// the handler each flag belongs to.
func writeMan(w io.Writer) {
	fs, owner := newFlagSet(&options{})
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`.TH SHARDD 8 "" "shardd %s" "System Manager's Manual"`, roffEscape(version()))
	p(".SH NAME")
	p(`shardd \- UDP and TCP server with one SO_REUSEPORT socket per CPU`)
	p(".SH SYNOPSIS")
	p(`.B shardd`)
	p(`[\fIOPTIONS\fR] \fIADDR\fR...`)
	for _, c := range commands() {
		p(".br")
		p(`.B shardd %s`, c.name)
		if c.usage != "" {
			p("%s", roffEscape(c.usage))
		}
	}
	p(".SH DESCRIPTION")
	p(`.B shardd`)
	p("serves each ADDR (:PORT for IPv4 and IPv6, IPv4:PORT or [IPv6]:PORT) with its own set of sockets, one per shard: " +
		"one goroutine locked to its OS thread per shard, each reading its own SO_REUSEPORT socket in batches, " +
		"so the kernel spreads the datagrams and one flow always lands on one shard. " +
		"With --proto tcp, each shard also owns a TCP listener on the same port. " +
		"The handler (--handler) decides what happens to each message: echo it, discard it, answer DNS queries from zone files, " +
		"or write syslog messages to a sink. Off Linux, one shard serves each address.")
	p(".PP")
	p("Sizes take K, M and G suffixes (and KiB, MiB, GiB), powers of 1024; durations take a unit, e.g. 500ms, 30s, 2m.")
	p(".SH OPTIONS")
	writeManFlags(w, fs, func(f *flag.Flag) bool { return owner[f.Name] == "" })
	for _, h := range handlers {
		if h.flags == nil {
			continue
		}
		p(`.SS "With \-\-handler %s"`, h.name)
		writeManFlags(w, fs, func(f *flag.Flag) bool { return owner[f.Name] == h.name })
	}
	p(".SH SUBCOMMANDS")
	for _, c := range commands() {
		writeManCommand(w, c)
	}
	writeManTail(p)
}

// writeManCommand writes subcommand c: its usage, summary and about text
// from the commands table, and the flags its own --help lists.
func writeManCommand(w io.Writer, c command) {
	fmt.Fprintln(w, ".TP")
	fmt.Fprintf(w, ".B shardd %s\n", c.name)
	text := c.summary
	if len(text) > 0 {
		text = strings.ToUpper(text[:1]) + text[1:] + "."
	}
	if c.about != "" {
		text += " " + strings.Join(strings.Fields(c.about), " ")
	}
	fmt.Fprintln(w, roffEscape(text))
	if c.name == "check" {
		fmt.Fprintln(w, "It takes the OPTIONS above.")
		return
	}
	flags := commandFlags(c)
	if len(flags) == 0 {
		return
	}
	fmt.Fprintln(w, ".RS")
	for _, f := range flags {
		fmt.Fprintln(w, ".TP")
		writeManItem(w, f.name, f.arg)
		fmt.Fprintln(w, roffEscape(f.doc))
	}
	fmt.Fprintln(w, ".RE")
}

// writeManFlags writes the flags of fs that keep admits, in the order
// --help shows them.
func writeManFlags(w io.Writer, fs *flag.FlagSet, keep func(*flag.Flag) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f) {
			return
		}
		fmt.Fprintln(w, ".TP")
		writeManItem(w, f.Name, flagArg(f))
		doc, def := f.Usage, f.DefValue
		if d, ok := manDefaults[f.Name]; ok {
			def = d
		}
		if def != "" && def != "false" && def != "0" {
			doc += " (default " + def + ")"
		}
		fmt.Fprintln(w, roffEscape(doc))
	})
}

// writeManItem writes the tag of an option's item: --name, and its value.
func writeManItem(w io.Writer, name, arg string) {
	if arg != "" {
		fmt.Fprintf(w, ".BI \\-\\-%s \" %s\"\n", roffEscape(name), roffEscape(arg))
	} else {
		fmt.Fprintf(w, ".B \\-\\-%s\n", roffEscape(name))
	}
}

// writeManTail writes the sections that do not come from the flags.
func writeManTail(p func(string, ...any)) {
	p(".SH SIGNALS")
	for _, s := range [][2]string{
		{"TERM, INT", "Stop gracefully: stop reading, let UDP queues and open TCP connections finish within --drain-timeout, flush the handler, exit."},
		{"HUP", "Reload the configuration: the --zone files (a zone that fails to load keeps the previous one; --secondary zones stay as transferred)."},
		{"USR1", "Reopen output files (the --sink FILE), after log rotation."},
		{"USR2", "Upgrade: start the binary anew with the same arguments and sockets, and hand over once it serves (see shardd upgrade)."},
	} {
		p(".TP")
		p(".B %s", s[0])
		p("%s", roffEscape(s[1]))
	}
	p(".SH EXIT STATUS")
	p(".TP")
	p(".B 0")
	p("Clean stop (or a subcommand that succeeded).")
	p(".TP")
	p(".B 1")
	p("Runtime failure: a socket that would not bind, a zone that would not load, a listener that failed.")
	p(".TP")
	p(".B 2")
	p("Usage error: an unknown or bad flag, a bad address; the one line on standard error names the fix.")
	p(".SH FILES")
	for _, f := range [][2]string{
		{"/etc/default/shardd", "The Debian package's settings: SHARDD_ARGS, the arguments of shardd.service."},
		{"/etc/shardd/zones/", "The Debian package's example zones, served by shardd.service."},
		{"/lib/systemd/system/shardd.service, shardd.socket", "The systemd units: Type=notify, reload as upgrade; optional socket activation."},
	} {
		p(".TP")
		p(".I %s", roffEscape(f[0]))
		p("%s", roffEscape(f[1]))
	}
	p(".SH ENVIRONMENT")
	p(".TP")
	p(".B LISTEN_PID, LISTEN_FDS")
	p("Sockets passed by systemd socket activation, used for the ADDRs they match.")
	p(".TP")
	p(".B NOTIFY_SOCKET")
	p("Where shardd reports READY=1, STOPPING=1 and the new MAINPID after an upgrade (Type=notify).")
	p(".TP")
	p(".B GOMAXPROCS")
	p("The default of --shards. Unset, shardd runs with one more than its shard threads, so that a shard blocked in the kernel never holds the last P; set, it is used as it is.")
	p(".SH SEE ALSO")
	p(`.BR systemd.service (5),`)
	p(`.BR systemd.socket (5),`)
	p(`.BR socket (7),`)
	p(`.BR udp (7)`)
	p(".PP")
	p("https://github.com/shardd/shardd")
}

// flagArg names a flag's value in the synopsis of an option: the choices
// of a fixed set, else a word for its type. Boolean flags take none.
func flagArg(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return ""
	}
	if c, ok := f.Value.(*choice); ok {
		return strings.Join(c.allowed, "|")
	}
	if v, ok := funcFlagArgs[f.Name]; ok {
		return v
	}
	if slices.Contains(fileFlags, f.Name) {
		return "FILE"
	}
	switch f.Value.(type) {
	case *byteSize:
		return "SIZE"
	case interface{ Get() any }:
		switch f.Value.(flag.Getter).Get().(type) {
		case time.Duration:
			return "DURATION"
		case int, int64, uint, uint64:
			return "N"
		case string:
			if strings.Contains(f.Usage, "URL") {
				return "URL"
			}
			if strings.HasSuffix(f.Name, "-id") || strings.HasSuffix(f.Name, "-user") {
				return "NAME"
			}
			return "ADDR" // --metrics, --xfr-listen
		}
	}
	return "VALUE"
}

// funcFlagArgs name the values of the flags defined with flag.Func, whose
// type says nothing: --handler syslog's.
var funcFlagArgs = map[string]string{"fsync": "never|interval|always", "fsync-interval": "DURATION", "rrl-exempt": "PREFIX", "tls": "ADDR", "xdp": "IFACE",
	"secondary": secondaryFlagForm, "zone-dir": "DIR",
	"kafka-acks": "all|leader|none", "kafka-compression": "zstd|lz4|snappy|gzip|none", "kafka-key": "source|none",
	"kafka-linger": "DURATION", "kafka-sasl": "scram-sha-256|scram-sha-512|plain",
	"allow-transfer": "PREFIX[,key:NAME]|key:NAME", "notify": "IP:PORT[,key:NAME]"}

// manDefaults replace defaults that depend on the machine the page is
// generated on.
// ("" when the usage says it already).
var manDefaults = map[string]string{"shards": ""}

// fileFlags are the flags whose value is a path.
var fileFlags = []string{"zone", "sink", "pidfile", "tsig-keys", "tls-cert", "tls-key", "tls-client-ca", "kafka-tls-ca", "kafka-sasl-password-file"}

// roffEscape makes text safe as roff input: a backslash is printed as one,
// and a line never starts with a control character (. or ').
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "\n.", "\n\\&.")
	s = strings.ReplaceAll(s, "\n'", "\n\\&'")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
