package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/shardd/shardd/packet/dns"
)

// runCheck is `shardd check [flags] ADDR...`: the serving command line
// checked as far as it can be without serving (nginx -t). It parses and
// validates the flags and ADDRs, checks the --pidfile path, loads the
// --zone files and opens the --sink without creating it. It binds nothing.
func runCheck(args []string, stdout, stderr io.Writer) int {
	o, done, err := parseServeArgs(args, stdout, func(w io.Writer, fs *flag.FlagSet) { printCommandUsage(w, "check", fs) })
	if done {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardd check: %v\n", err)
		return exitUsage
	}
	log := newLogger(o, stderr)
	defer func() { _ = log.Sync() }()
	if err := checkRuntime(o, log); err != nil {
		fmt.Fprintf(stderr, "shardd check: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "shardd check: ok: --handler %s on %s (nothing was bound)\n", o.handler.value, strings.Join(o.allAddrs(), " "))
	return exitOK
}

// checkRuntime checks what the daemon would meet at start beyond the
// command line: the pidfile path and the handler's files.
func checkRuntime(o *options, log *zap.Logger) error {
	if o.pidfile != "" {
		if err := checkPidfile(o.pidfile); err != nil {
			return err
		}
		if err := checkDir(o.pidfile, "--pidfile"); err != nil {
			return err
		}
	}
	if _, err := loadTLS(o, log, nil); err != nil { // the --tls pair, --tls-client-ca
		return err
	}
	switch o.handler.value {
	case "dns":
		return checkZones(o, log)
	case "syslog":
		return checkSink(o, log)
	}
	return nil
}

// checkZones loads every --zone file as the daemon would.
func checkZones(o *options, log *zap.Logger) error {
	zs, err := dns.LoadZones(o.dns.zones)
	if err != nil {
		return err
	}
	if _, err := loadTSIGKeys(o); err != nil {
		return err
	}
	for _, z := range zs.List {
		log.Info("zone loads", zap.String("zone", z.Origin), zap.String("file", z.File), zap.Uint32("serial", z.Serial), zap.Int("records", z.Count))
	}
	return nil
}

// checkSink opens an existing --sink as the daemon would (and closes it
// again, having written nothing); a sink that does not exist yet is not
// created: its directory must exist.
func checkSink(o *options, log *zap.Logger) error {
	path := o.syslog.sink
	if path == "-" {
		return nil
	}
	if isKafkaSink(path) { // the brokers are asked (Open), nothing is produced
		return checkKafkaSink(o)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := checkDir(path, "--sink"); err != nil {
			return err
		}
		log.Info("sink does not exist yet; shardd will create it", zap.String("sink", path))
		return nil
	}
	svc, err := newSyslogService(o, zap.NewNop())
	if err != nil {
		return err
	}
	return svc.Close(context.Background())
}

// checkDir checks that the directory path's file is made in exists.
func checkDir(path, flagName string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: its directory %s: %v (create it, or pick another path)", flagName, path, dir, unwrapPathErr(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: %s is not a directory", flagName, path, dir)
	}
	return nil
}
