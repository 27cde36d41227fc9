package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/xdpns/xdpns/bench/internal/report"
)

// write writes the Markdown report and the plots into -out (and the
// report to -results, its plots into results/ beside it), and prints the
// report to w.
func (res *result) write(o *options, w io.Writer) error {
	md := filepath.Join(o.outDir, "report.md")
	if err := report.Write(md, o.outDir, res.meta, res.runs, res.setups); err != nil {
		return err
	}
	if o.results != "" {
		if err := report.Write(o.results, filepath.Join(filepath.Dir(o.results), "results"), res.meta, res.runs, res.setups); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(md)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	fmt.Fprintf(os.Stderr, "harness: JSON lines in %s, report and plots in %s\n", res.jsonlTo, o.outDir)
	return err
}
