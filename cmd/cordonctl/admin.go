package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func setupEnrollTokenCreate(fs *flag.FlagSet) func(*invocation) error {
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid, a `DURATION` such as 24h or 30m")
	uses := fs.Int("uses", 1, "`N` agents may enroll with the token")
	tags := tagsFlag{}
	fs.Var(tags, "tag", "tag `k=v` given to agents enrolled with the token (repeatable)")
	asJSON := fs.Bool("json", false, "print the created token as one JSON object")
	return func(inv *invocation) error {
		if *ttl <= 0 {
			return usagef("--ttl: want a positive duration, got %s", *ttl)
		}
		if *uses < 1 {
			return usagef("--uses: want at least 1, got %d", *uses)
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		body := map[string]any{"ttl": formatDuration(*ttl), "uses": *uses, "tags": map[string]string(tags)}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/enroll-tokens", nil, body, &raw); err != nil {
			return err
		}
		var tok struct {
			ID        string            `json:"id"`
			Token     string            `json:"token"`
			ExpiresAt apiTime           `json:"expires_at"`
			Uses      int               `json:"uses"`
			Tags      map[string]string `json:"tags"`
		}
		if err := json.Unmarshal(raw, &tok); err != nil {
			return fmt.Errorf("decoding the token: %w", err)
		}
		if tok.Token == "" {
			return errors.New("the API returned no token")
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		t := newTable(inv.stdout)
		t.row("id:", tok.ID)
		t.row("expires:", stamp(tok.ExpiresAt.Time))
		t.row("uses:", strconv.Itoa(tok.Uses))
		t.row("tags:", orDash(joinTags(tok.Tags)))
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintf(inv.stdout, "enrollment token (shown only now; use with cordon-agent enroll --token):\n%s\n", clean(tok.Token))
		return nil
	}
}

func setupEnrollTokenList(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print one JSON array of enrollment tokens")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		type token struct {
			ID        string            `json:"id"`
			ExpiresAt apiTime           `json:"expires_at"`
			Uses      int               `json:"uses"`
			Used      int               `json:"used"`
			Tags      map[string]string `json:"tags"`
			CreatedAt apiTime           `json:"created_at"`
		}
		raw, tokens, err := listInto[token](inv.ctx, c, "/api/v1/enroll-tokens", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(tokens) == 0 {
			fmt.Fprintln(inv.stderr, "no enrollment tokens")
			return nil
		}
		t := newTable(inv.stdout, "ID", "USED", "TAGS", "CREATED", "EXPIRES")
		for _, tok := range tokens {
			t.row(tok.ID, fmt.Sprintf("%d/%d", tok.Used, tok.Uses), orDash(joinTags(tok.Tags)),
				stamp(tok.CreatedAt.Time), stamp(tok.ExpiresAt.Time))
		}
		return t.flush()
	}
}

var roles = []string{"viewer", "responder", "admin"}

func setupAPIKeyCreate(fs *flag.FlagSet) func(*invocation) error {
	name := fs.String("name", "", "what the key is for, `NAME` (required)")
	role := fs.String("role", "", "`ROLE` of the key: viewer, responder or admin (required)")
	asJSON := fs.Bool("json", false, "print the created key as one JSON object")
	return func(inv *invocation) error {
		if strings.TrimSpace(*name) == "" {
			return usagef("--name is required")
		}
		if *role == "" {
			return usagef("--role is required (%s)", strings.Join(roles, ", "))
		}
		valid := false
		for _, r := range roles {
			valid = valid || r == *role
		}
		if !valid {
			return usagef("--role: want %s, got %q", strings.Join(roles, ", "), *role)
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/api-keys", nil, map[string]string{"name": *name, "role": *role}, &raw); err != nil {
			return err
		}
		var key struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Role string `json:"role"`
			Key  string `json:"key"`
		}
		if err := json.Unmarshal(raw, &key); err != nil {
			return fmt.Errorf("decoding the key: %w", err)
		}
		if key.Key == "" {
			return errors.New("the API returned no key")
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		t := newTable(inv.stdout)
		t.row("id:", key.ID)
		t.row("name:", key.Name)
		t.row("role:", key.Role)
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintf(inv.stdout, "API key (shown only now; use as CORDON_TOKEN):\n%s\n", clean(key.Key))
		return nil
	}
}

func setupAPIKeyList(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print one JSON array of API keys")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		type key struct {
			ID        string  `json:"id"`
			Name      string  `json:"name"`
			Role      string  `json:"role"`
			CreatedAt apiTime `json:"created_at"`
			Revoked   bool    `json:"revoked"`
		}
		raw, keys, err := listInto[key](inv.ctx, c, "/api/v1/api-keys", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(keys) == 0 {
			fmt.Fprintln(inv.stderr, "no API keys")
			return nil
		}
		t := newTable(inv.stdout, "ID", "NAME", "ROLE", "CREATED", "REVOKED")
		for _, k := range keys {
			t.row(k.ID, k.Name, k.Role, stamp(k.CreatedAt.Time), yesNo(k.Revoked))
		}
		return t.flush()
	}
}

func setupCAPin(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the API's answer (pin and certificate) as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/ca", nil, nil, &raw); err != nil {
			return err
		}
		var ca struct {
			Pin         string `json:"pin"`
			Certificate string `json:"certificate"`
		}
		if err := json.Unmarshal(raw, &ca); err != nil {
			return fmt.Errorf("decoding the CA: %w", err)
		}
		pin, err := checkPin(ca.Pin, ca.Certificate)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		fmt.Fprintln(inv.stdout, pin)
		return nil
	}
}

// checkPin checks the form of a CA pin ("sha256:" and 64 hex digits) and,
// when the certificate is given, that the pin is the SHA-256 of its DER
// encoding. It returns the pin in lower case.
func checkPin(pin, certPEM string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(pin))
	hexPart, ok := strings.CutPrefix(p, "sha256:")
	if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("the API returned a malformed CA pin %q", clean(pin))
	}
	if certPEM == "" {
		return p, nil
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("the API returned a CA certificate that is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	if hex.EncodeToString(sum[:]) != hexPart {
		return "", errors.New("the CA pin returned by the API does not match its certificate")
	}
	return p, nil
}
