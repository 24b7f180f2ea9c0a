package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiClient is the little of the REST API a load run needs.
type apiClient struct {
	base, token string
	http        *http.Client
}

func newAPIClient(base, token string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

func (c *apiClient) createToken(ctx context.Context, uses int) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := c.do(ctx, "POST", "/api/v1/enroll-tokens", map[string]any{"ttl": "1h", "uses": uses, "tags": map[string]string{"loadgen": "true"}}, &out); err != nil {
		return "", fmt.Errorf("creating an enrollment token for %d agents: %w", uses, err)
	}
	return out.Token, nil
}

func (c *apiClient) caPin(ctx context.Context) (string, error) {
	var out struct {
		Pin string `json:"pin"`
	}
	if err := c.do(ctx, "GET", "/api/v1/ca", nil, &out); err != nil {
		return "", fmt.Errorf("reading the CA pin: %w", err)
	}
	return out.Pin, nil
}

func (c *apiClient) createCommand(ctx context.Context, agentID string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, "POST", "/api/v1/commands", map[string]any{
		"agent_id": agentID, "action": "collect", "reason": "cordon-loadgen latency probe", "ttl": "5m",
	}, &out)
	return out.ID, err
}

// pollEvery is how often the API is asked whether something happened; it
// bounds the resolution of the latencies measured through the API.
const pollEvery = 5 * time.Millisecond

func (c *apiClient) waitCommand(ctx context.Context, id string) error {
	for {
		var out struct {
			Status string `json:"status"`
			Result string `json:"result"`
		}
		if err := c.do(ctx, "GET", "/api/v1/commands/"+id, nil, &out); err != nil {
			return err
		}
		switch out.Status {
		case "succeeded":
			return nil
		case "failed", "expired":
			return fmt.Errorf("command %s %s: %s", id, out.Status, out.Result)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("command %s: no result: %w", id, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

func (c *apiClient) waitIncident(ctx context.Context, findingID string) error {
	for {
		var out struct {
			IncidentID string `json:"incident_id"`
		}
		err := c.do(ctx, "GET", "/api/v1/findings/"+findingID, nil, &out)
		if err == nil && out.IncidentID != "" {
			return nil
		}
		if err != nil && !strings.Contains(err.Error(), "404") {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("finding %s: no incident: %w", findingID, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}
