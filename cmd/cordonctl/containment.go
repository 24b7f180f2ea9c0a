package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
)

func setupAgentBreakGlass(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the API's answer as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/agents/"+pathEscape(inv.args[0])+"/break-glass", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var bg struct {
			AgentID string `json:"agent_id"`
			Code    string `json:"code"`
		}
		if err := json.Unmarshal(raw, &bg); err != nil || bg.Code == "" {
			return fmt.Errorf("decoding the break-glass code: %v", err)
		}
		fmt.Fprintf(inv.stderr, "on the host of agent %s, as root: cordon-agent release --break-glass CODE\n", bg.AgentID)
		fmt.Fprintln(inv.stdout, bg.Code)
		return nil
	}
}
