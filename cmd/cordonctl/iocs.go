package main

import (
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
		return requestSet(inv, *asJSON, http.MethodGet, "/api/v1/iocs", nil, func(c *client, set iocSet) error {
			if set.Version == "" {
				fmt.Fprintln(inv.stdout, "no indicator set pushed (push one with: cordonctl ioc push FILE)")
				return nil
			}
			matching, err := agentsOn(inv, c, set.Version, func(a agent) string { return a.IocsVersion })
			if err != nil {
				return err
			}
			t := newTable(inv.stdout, "FIELD", "VALUE")
			t.row("version", clean(set.Version))
			t.row("indicators", strconv.Itoa(set.Indicators)+" ("+set.typeCounts()+")")
			t.row("file", orDash(clean(set.Name)))
			t.row("pushed by", orDash(clean(set.PushedBy)))
			t.row("pushed at", stampAgo(set.PushedAt.Time, inv.now()))
			t.row("agents matching it", matching)
			return t.flush()
		})
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
		body := map[string]any{"name": filepath.Base(name), "content": string(b)}
		return requestSet(inv, *asJSON, http.MethodPost, "/api/v1/iocs", body, func(_ *client, set iocSet) error {
			fmt.Fprintf(inv.stdout, "indicator set %s: %d indicators (%s); online agents get it now, the others when they connect\n",
				clean(set.Version), set.Indicators, set.typeCounts())
			return nil
		})
	}
}
