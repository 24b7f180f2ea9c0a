package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// iocSet holds the fields of an API IndicatorSet.
type iocSet struct {
	Version    string         `json:"version"`
	Indicators int            `json:"indicators"`
	Types      map[string]int `json:"types"`
	Name       string         `json:"name"`
	PushedBy   string         `json:"pushed_by"`
	PushedAt   apiTime        `json:"pushed_at"`
}

// maxIocBytes stops a mistaken file early; the collector holds the real
// limit (2 MiB).
const maxIocBytes = 2 << 20

func (s iocSet) typeCounts() string {
	var parts []string
	for t, n := range s.Types {
		parts = append(parts, fmt.Sprintf("%d %s", n, clean(t)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func setupIoc(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the indicator set as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/iocs", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var set iocSet
		if err := json.Unmarshal(raw, &set); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		if set.Version == "" {
			fmt.Fprintln(inv.stdout, "no indicator set pushed (push one with: cordonctl ioc push FILE)")
			return nil
		}
		_, agents, err := listInto[agent](inv.ctx, c, "/api/v1/agents", nil)
		if err != nil {
			return err
		}
		matching, total := 0, 0
		for _, a := range agents {
			if a.Revoked {
				continue
			}
			total++
			if a.IocsVersion == set.Version {
				matching++
			}
		}
		t := newTable(inv.stdout, "FIELD", "VALUE")
		t.row("version", clean(set.Version))
		t.row("indicators", strconv.Itoa(set.Indicators)+" ("+set.typeCounts()+")")
		t.row("file", orDash(clean(set.Name)))
		t.row("pushed by", orDash(clean(set.PushedBy)))
		t.row("pushed at", stampAgo(set.PushedAt.Time, inv.now()))
		t.row("agents matching it", fmt.Sprintf("%d of %d", matching, total))
		return t.flush()
	}
}

func setupIocPush(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the stored indicator set as one JSON object")
	return func(inv *invocation) error {
		name := inv.args[0]
		st, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("ioc push: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("ioc push: %s is not a file", name)
		}
		if st.Size() > maxIocBytes {
			return fmt.Errorf("ioc push: %s has %d bytes, more than the %d an indicator set may have", name, st.Size(), maxIocBytes)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("ioc push: %w", err)
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		body := map[string]any{"name": filepath.Base(name), "content": string(b)}
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/iocs", nil, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var set iocSet
		if err := json.Unmarshal(raw, &set); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		fmt.Fprintf(inv.stdout, "indicator set %s: %d indicators (%s); online agents get it now, the others when they connect\n",
			clean(set.Version), set.Indicators, set.typeCounts())
		return nil
	}
}
