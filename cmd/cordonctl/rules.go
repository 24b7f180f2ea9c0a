package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ruleSet holds the fields of an API RuleSet.
type ruleSet struct {
	Version  string   `json:"version"`
	Rules    int      `json:"rules"`
	Files    []string `json:"files"`
	PushedBy string   `json:"pushed_by"`
	PushedAt apiTime  `json:"pushed_at"`
}

// maxPushFiles and maxPushBytes stop a mistaken folder (a home
// directory) early; the collector holds the real limits.
const (
	maxPushFiles = 2000
	maxPushBytes = 3 << 20
)

func setupRules(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the rule set as one JSON object")
	return func(inv *invocation) error {
		return requestSet(inv, *asJSON, http.MethodGet, "/api/v1/rules", nil, func(c *client, rs ruleSet) error {
			if rs.Version == "" {
				fmt.Fprintln(inv.stdout, "no rule set pushed: agents run their built-in pack only (push one with: cordonctl rules push DIR)")
				return nil
			}
			running, err := agentsOn(inv, c, rs.Version, func(a agent) string { return a.RulesVersion })
			if err != nil {
				return err
			}
			t := newTable(inv.stdout, "FIELD", "VALUE")
			t.row("version", clean(rs.Version))
			t.row("rules", strconv.Itoa(rs.Rules))
			t.row("files", strconv.Itoa(len(rs.Files)))
			t.row("pushed by", orDash(clean(rs.PushedBy)))
			t.row("pushed at", stampAgo(rs.PushedAt.Time, inv.now()))
			t.row("agents running it", running)
			if err := t.flush(); err != nil {
				return err
			}
			for _, f := range rs.Files {
				fmt.Fprintln(inv.stdout, "  "+clean(f))
			}
			return nil
		})
	}
}

// pushFile is one rule file of a push request.
type pushFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

func setupRulesPush(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the stored rule set as one JSON object")
	return func(inv *invocation) error {
		files, err := readRuleDir(inv.args[0])
		if err != nil {
			return err
		}
		body := map[string]any{"files": files}
		return requestSet(inv, *asJSON, http.MethodPost, "/api/v1/rules", body, func(_ *client, rs ruleSet) error {
			fmt.Fprintf(inv.stdout, "rule set %s: %d rules from %d files; online agents get it now, the others when they connect\n",
				clean(rs.Version), rs.Rules, len(rs.Files))
			return nil
		})
	}
}

// readRuleDir reads every .yml and .yaml file under dir, named by its
// slash-separated path below dir.
func readRuleDir(dir string) ([]pushFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("rules push: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("rules push: %s is not a folder: push the folder that holds the rule files", dir)
	}
	var (
		files []pushFile
		total int
	)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		ext := strings.ToLower(path.Ext(d.Name()))
		if d.IsDir() || !d.Type().IsRegular() || (ext != ".yml" && ext != ".yaml") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(b)
		if len(files) >= maxPushFiles || total > maxPushBytes {
			return fmt.Errorf("more than %d files or %d bytes of rules under %s", maxPushFiles, maxPushBytes, dir)
		}
		files = append(files, pushFile{Name: filepath.ToSlash(rel), Content: string(b)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rules push: reading %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, errors.New("rules push: no rule files (.yml, .yaml) under " + dir)
	}
	return files, nil
}
