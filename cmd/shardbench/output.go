package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shardd/shardd/cmd/internal/atomicfile"
)

// outFiles are the names shardbench may write into --out (charts names
// the charts among them).
var outFiles = []string{"results.md", "results.json", "chart.svg", "chart-dns.svg", "chart-syslog.svg", "chart-offload.svg"}

// checkOut refuses an --out directory where a name shardbench writes is a
// symbolic link or not a regular file (atomicfile.Check), before the loads
// run: found at the end, it would cost the whole run.
func checkOut(dir string) error {
	for _, name := range outFiles {
		if err := atomicfile.Check(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("--out %w", err)
		}
	}
	return nil
}

// writeResults prints the markdown, then writes it, results.json and the
// charts into dir, each atomically and never through a symbolic link
// (atomicfile.Write).
func writeResults(dir, md string, res results, charts map[string]string) error {
	fmt.Print(md) // first: a file refused below does not lose the figures
	js, _ := json.MarshalIndent(res, "", "  ")
	data := map[string][]byte{"results.md": []byte(md), "results.json": js}
	for name, svg := range charts {
		data[name] = []byte(svg)
	}
	names := slices.Sorted(maps.Keys(charts))
	for _, name := range append([]string{"results.md", "results.json"}, names...) {
		if err := atomicfile.Write(filepath.Join(dir, name), data[name], 0o644); err != nil {
			return fmt.Errorf("--out %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s/results.md, results.json%s\n", dir, strings.Join(append([]string{""}, names...), ", "))
	return nil
}
