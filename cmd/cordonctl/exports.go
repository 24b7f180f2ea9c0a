package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
)

func setupExportsStatus(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print one JSON array of export sinks")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		type sink struct {
			Name            string  `json:"name"`
			Type            string  `json:"type"`
			Target          string  `json:"target"`
			Queued          int     `json:"queued"`
			Dead            int     `json:"dead_lettered"`
			Delivered       uint64  `json:"delivered_total"`
			Failed          uint64  `json:"failed_total"`
			OldestQueuedAt  apiTime `json:"oldest_queued_at"`
			LastError       string  `json:"last_error"`
			LastDeliveredAt apiTime `json:"last_delivered_at"`
		}
		raw, sinks, err := listInto[sink](inv.ctx, c, "/api/v1/exports", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(sinks) == 0 {
			fmt.Fprintln(inv.stderr, "no export sinks configured (exports: in the collector configuration)")
			return nil
		}
		t := newTable(inv.stdout, "SINK", "TYPE", "TARGET", "QUEUED", "DEAD", "DELIVERED", "FAILED", "OLDEST", "LAST ERROR")
		for _, s := range sinks {
			t.row(s.Name, s.Type, truncate(s.Target, 40), strconv.Itoa(s.Queued), strconv.Itoa(s.Dead),
				strconv.FormatUint(s.Delivered, 10), strconv.FormatUint(s.Failed, 10),
				stampAgo(s.OldestQueuedAt.Time, inv.now()), orDash(truncate(s.LastError, 60)))
		}
		return t.flush()
	}
}

func setupExportsReplay(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		name := inv.args[0]
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/exports/"+pathEscape(name)+"/replay", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var res struct {
			Replayed int `json:"replayed"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		fmt.Fprintf(inv.stdout, "%d events moved from the dead-letter queue of %s back to its queue\n", res.Replayed, clean(name))
		return nil
	}
}
