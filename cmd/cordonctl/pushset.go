package main

import (
	"encoding/json"
	"fmt"
)

// requestSet sends a request about a set pushed to the fleet (a rule or
// indicator set: GET to show it, POST with body to push one) and prints
// the answer: as it came with asJSON, else decoded into an S by show.
func requestSet[S any](inv *invocation, asJSON bool, method, path string, body any, show func(*client, S) error) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(inv.ctx, method, path, nil, body, &raw); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(inv.stdout, raw)
	}
	var set S
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return show(c, set)
}

// agentsOn says how many of the agents not revoked report version v of
// a set ("3 of 4"); version reads it from an agent.
func agentsOn(inv *invocation, c *client, v string, version func(agent) string) (string, error) {
	_, agents, err := listInto[agent](inv.ctx, c, "/api/v1/agents", nil)
	if err != nil {
		return "", err
	}
	on, total := 0, 0
	for _, a := range agents {
		if a.Revoked {
			continue
		}
		total++
		if version(a) == v {
			on++
		}
	}
	return fmt.Sprintf("%d of %d", on, total), nil
}
