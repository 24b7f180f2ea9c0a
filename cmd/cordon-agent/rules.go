package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cordon-edr/cordon/detectors/sigma"
)

// checkLine is one line of `rules check`: a rule that compiled, or a file
// that did not.
type checkLine struct {
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	OK       bool     `json:"ok"`
	ID       string   `json:"id,omitempty"`
	Title    string   `json:"title,omitempty"`
	Route    string   `json:"route,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func cmdRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, "usage: cordon-agent rules check PATH... [--json]\n")
			return nil
		}
		return usageError{errors.New("rules: want 'rules check PATH... [--json]'")}
	}
	return cmdRulesCheck(args[1:], stdout, stderr)
}

func cmdRulesCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules check", stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	// Flags may come before or after the paths.
	var paths []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		rest = fs.Args()
		if len(rest) > 0 {
			paths = append(paths, rest[0])
			rest = rest[1:]
		}
	}
	if len(paths) == 0 {
		return usageError{errors.New("rules check: want at least one PATH (a rule file or a folder)")}
	}
	var lines []checkLine
	for _, p := range paths {
		ls, err := checkPath(p)
		if err != nil {
			return fmt.Errorf("rules check: %w", err)
		}
		lines = append(lines, ls...)
	}
	failed := 0
	for _, l := range lines {
		if !l.OK {
			failed++
		}
	}
	if *asJSON {
		if lines == nil {
			lines = []checkLine{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(lines); err != nil {
			return err
		}
	} else {
		for _, l := range lines {
			fmt.Fprintln(stdout, l.text())
		}
	}
	if failed > 0 {
		return fmt.Errorf("rules check: %d of %d failed", failed, len(lines))
	}
	if len(lines) == 0 {
		return errors.New("rules check: no rule files (.yml, .yaml) found")
	}
	return nil
}

func (l checkLine) text() string {
	if !l.OK {
		return "error " + l.Error
	}
	loc := l.File
	if l.Line > 0 {
		loc = fmt.Sprintf("%s:%d", l.File, l.Line)
	}
	s := fmt.Sprintf("ok    %s %s %q", loc, l.ID, l.Title)
	if l.Route != "" {
		s += " (runs on " + l.Route + " events)"
	}
	if len(l.Warnings) > 0 {
		s += " warning: " + strings.Join(l.Warnings, "; ")
	}
	return s
}

// checkPath compiles a rule file, or every rule file under a folder.
func checkPath(p string) ([]checkLine, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	var results []sigma.FileResult
	if st.IsDir() {
		rs, err := sigma.LoadFS(os.DirFS(p), ".")
		if err != nil {
			return nil, err
		}
		for i := range rs {
			rs[i].File = filepath.Join(p, rs[i].File)
			var se *sigma.Error
			if errors.As(rs[i].Err, &se) {
				se.File = rs[i].File
			}
			for _, r := range rs[i].Rules {
				r.File = rs[i].File
			}
		}
		results = rs
	} else {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rules, err := sigma.Parse(p, data)
		results = []sigma.FileResult{{File: p, Rules: rules, Err: err}}
	}
	var out []checkLine
	for _, res := range results {
		if res.Err != nil {
			l := checkLine{File: res.File, Error: res.Err.Error()}
			var se *sigma.Error
			if errors.As(res.Err, &se) {
				l.Line = se.Line
			}
			out = append(out, l)
			continue
		}
		for _, r := range res.Rules {
			out = append(out, checkLine{
				File: r.File, Line: r.Line, OK: true, ID: r.ID, Title: r.Title,
				Route: r.Route(), Warnings: r.Warnings,
			})
		}
	}
	return out, nil
}
