package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	// pageLimit is the page size asked of listings: the API's maximum.
	pageLimit = "1000"
	// maxResponse bounds the size of one response body.
	maxResponse = 64 << 20
	// tokenHint tells how to get an API key; it ends every 401 error.
	tokenHint = "set CORDON_TOKEN (the collector printed an admin key on first run; it is also in DATA/admin.token)"
)

// A client calls the collector's REST API (docs/api.md).
type client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	host  string
	https bool
	token string
	http  *http.Client
}

func newClient(api, token string, hc *http.Client) (*client, error) {
	u, err := url.Parse(strings.TrimSpace(api))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("bad API address %q: want http://HOST:PORT or https://HOST:PORT", api)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return &client{base: u.String(), host: u.Hostname(), https: u.Scheme == "https", token: token, http: hc}, nil
}

// plaintextRemote reports whether the API is reached over plain HTTP on
// a host other than loopback, where the API key would travel in clear.
func (c *client) plaintextRemote() bool {
	if c.https || c.host == "localhost" {
		return false
	}
	ip := net.ParseIP(c.host)
	return ip == nil || !ip.IsLoopback()
}

// An apiError is an error response of the API.
type apiError struct {
	status int
	msg    string
	field  string
	// problems are the lines of a refused rule set ("file:line: reason")
	// or indicator set ("line N: reason", "OBJECT-ID: reason"); what
	// names which.
	problems []string
	what     string
}

func (e *apiError) Error() string {
	msg := e.msg
	if e.field != "" {
		msg = e.field + ": " + e.msg
	}
	if len(e.problems) > 0 {
		msg = e.what + " refused, nothing was stored or sent:\n  " + strings.Join(e.problems, "\n  ")
	}
	return msg
}

// An unreachableError means no HTTP response came back from the API.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the API at %s: %v (is cordon-collector running? the address comes from CORDON_API or --api)", e.addr, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// do sends one request to path (under the API base) and decodes the JSON
// response into out, when out is not nil.
func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cordonctl/"+buildVersion())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &unreachableError{addr: c.base, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading the response of %s %s: %w", method, path, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("the response of %s %s is larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.errorFrom(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the response of %s %s: %w", method, path, err)
	}
	return nil
}

// errorFrom builds the error of a non-2xx response from its
// {"error", "field"} body, or from the status when the body is not that.
func (c *client) errorFrom(status int, data []byte) error {
	var body struct {
		Error    string `json:"error"`
		Field    string `json:"field"`
		Problems []struct {
			File   string `json:"file"`
			Line   int    `json:"line"`
			Object string `json:"object"`
			Reason string `json:"reason"`
		} `json:"problems"`
	}
	e := &apiError{status: status}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.msg, e.field = clean(body.Error), clean(body.Field)
		e.what = "rule set"
		if body.Field == "content" {
			e.what = "indicator set"
		}
		for _, p := range body.Problems {
			var loc string
			switch {
			case p.File != "":
				loc = clean(p.File)
				if p.Line > 0 {
					loc += ":" + strconv.Itoa(p.Line)
				}
			case p.Line > 0:
				loc = "line " + strconv.Itoa(p.Line)
			case p.Object != "":
				loc = clean(p.Object)
			}
			if loc == "" {
				e.problems = append(e.problems, clean(p.Reason))
				continue
			}
			e.problems = append(e.problems, loc+": "+clean(p.Reason))
		}
	} else {
		e.msg = fmt.Sprintf("%d %s", status, http.StatusText(status))
		if snippet := strings.TrimSpace(string(data)); snippet != "" && len(snippet) <= 200 {
			e.msg += ": " + clean(snippet)
		}
	}
	switch status {
	case http.StatusUnauthorized:
		if c.token == "" {
			e.msg = "no API key: " + tokenHint
		} else {
			e.msg += ": the API key was refused; " + tokenHint
		}
	case http.StatusForbidden:
		e.msg += " (the API key's role is too low for this)"
	}
	return e
}

// page is one page of a listing.
type page struct {
	Items []json.RawMessage `json:"items"`
	Next  string            `json:"next"`
}

// list fetches every page of a listing, following the next cursors, and
// returns all items in order.
func (c *client) list(ctx context.Context, path string, query url.Values) ([]json.RawMessage, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", pageLimit)
	items := []json.RawMessage{}
	seen := map[string]bool{}
	for {
		var p page
		if err := c.do(ctx, http.MethodGet, path, q, nil, &p); err != nil {
			return nil, err
		}
		items = append(items, p.Items...)
		if p.Next == "" {
			return items, nil
		}
		if seen[p.Next] {
			return nil, fmt.Errorf("listing %s: the API returned cursor %q twice", path, p.Next)
		}
		seen[p.Next] = true
		q.Set("cursor", p.Next)
	}
}

// listInto fetches every page of a listing and returns the items both as
// the API sent them (for --json) and decoded as T (for tables).
func listInto[T any](ctx context.Context, c *client, path string, query url.Values) ([]json.RawMessage, []T, error) {
	raw, err := c.list(ctx, path, query)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, nil, fmt.Errorf("decoding item %d of %s: %w", i, path, err)
		}
	}
	return raw, out, nil
}

// pathEscape escapes one path segment such as an id.
func pathEscape(s string) string { return url.PathEscape(s) }
