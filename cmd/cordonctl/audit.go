package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

func setupAudit(fs *flag.FlagSet) func(*invocation) error {
	actor := fs.String("actor", "", "only calls by the API key `NAME` (or id)")
	action := fs.String("action", "", "only calls of `ACTION`, such as incident.update or command.create")
	target := fs.String("target", "", "only calls on the object `ID`")
	outcome := fs.String("outcome", "", "only calls with `OUTCOME` success or failure")
	asJSON := fs.Bool("json", false, "print one JSON array of audit entries")
	return func(inv *invocation) error {
		if *outcome != "" && *outcome != "success" && *outcome != "failure" {
			return usagef("--outcome: want success or failure, got %q", *outcome)
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"actor": *actor, "action": *action, "target": *target, "outcome": *outcome} {
			if v != "" {
				q.Set(k, v)
			}
		}
		type entry struct {
			Seq     uint64  `json:"seq"`
			At      apiTime `json:"at"`
			Actor   string  `json:"actor"`
			Role    string  `json:"role"`
			Action  string  `json:"action"`
			Target  string  `json:"target"`
			Source  string  `json:"source"`
			Status  int     `json:"status"`
			Outcome string  `json:"outcome"`
		}
		raw, entries, err := listInto[entry](inv.ctx, c, "/api/v1/audit", q)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(entries) == 0 {
			fmt.Fprintln(inv.stderr, "no audit entries")
			return nil
		}
		t := newTable(inv.stdout, "SEQ", "TIME", "ACTOR", "ROLE", "ACTION", "TARGET", "SOURCE", "OUTCOME")
		for _, e := range entries {
			t.row(strconv.FormatUint(e.Seq, 10), stamp(e.At.Time), e.Actor, orDash(e.Role), e.Action, orDash(e.Target),
				e.Source, fmt.Sprintf("%s (%d)", e.Outcome, e.Status))
		}
		return t.flush()
	}
}

func setupAuditVerify(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the verification as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/audit/verify", nil, nil, &raw); err != nil {
			return err
		}
		var v struct {
			OK          *bool  `json:"ok"`
			Entries     uint64 `json:"entries"`
			FirstBadSeq uint64 `json:"first_bad_seq"`
			Reason      string `json:"reason"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.OK == nil {
			return fmt.Errorf("decoding the verification: the API answered %s", clean(string(raw)))
		}
		if *asJSON {
			if err := writeJSON(inv.stdout, raw); err != nil {
				return err
			}
		} else if *v.OK {
			fmt.Fprintf(inv.stdout, "audit trail intact: %d entries\n", v.Entries)
		}
		if !*v.OK {
			return fmt.Errorf("audit trail broken at entry %d: %s", v.FirstBadSeq, clean(v.Reason))
		}
		return nil
	}
}

func setupAPIKeyRevoke(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the revoked key as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/api-keys/"+pathEscape(inv.args[0])+"/revoke", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var k struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("decoding the key: %w", err)
		}
		fmt.Fprintf(inv.stdout, "API key %s (%s) revoked\n", clean(k.ID), clean(k.Name))
		return nil
	}
}
