package isolation

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/protocol"
)

// firewall is the operating system's part: install, check and delete
// Cordon's table.
type firewall interface {
	Apply(rules []Rule) error
	Remove() error
	Check(rules []Rule) error
	Present() (bool, error)
}

// StateFile is the name of the isolation state in the agent's state
// folder. It is a small JSON file rather than a record in the agent's
// store so that `cordon-agent release --break-glass` can read and clear
// it while the agent is stopped, and so that isolation can be re-applied
// at start before the store is even opened.
const StateFile = "isolation.json"

// RollbackWithin bounds the time from applying the rules to having
// removed them again when the collector channel does not survive.
const RollbackWithin = 10 * time.Second

// DefaultProbe is where the isolation proof sends one UDP datagram that
// must not leave: TEST-NET-1 (RFC 5737), the discard port.
const DefaultProbe = "192.0.2.1:9"

// State is what is persisted about the host's isolation.
type State struct {
	Isolated bool      `json:"isolated"`
	Since    time.Time `json:"since,omitzero"`
	Command  string    `json:"command,omitempty"`
	Policy   Policy    `json:"policy"`
	// BreakGlassSHA256 is the hex SHA-256 of the code that lifts the
	// isolation locally, when the collector sent one.
	BreakGlassSHA256 string `json:"break_glass_sha256,omitempty"`
}

// Isolator isolates and releases the host and remembers which it is.
type Isolator struct {
	path  string
	fw    firewall
	probe func(ctx context.Context, addr string) error
	log   *slog.Logger

	mu sync.Mutex
}

// New returns an isolator keeping its state in stateDir.
func New(stateDir string, log *slog.Logger) *Isolator {
	if log == nil {
		log = slog.Default()
	}
	return &Isolator{path: filepath.Join(stateDir, StateFile), fw: newFirewall(), probe: probe, log: log}
}

// State returns the persisted state; a missing file means not isolated.
func (i *Isolator) State() (State, error) {
	var s State
	b, err := os.ReadFile(i.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading isolation state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("reading isolation state %s: %w", i.path, err)
	}
	return s, nil
}

// Isolated reports the persisted state; an unreadable state counts as
// isolated, since the host may well be.
func (i *Isolator) Isolated() bool {
	s, err := i.State()
	return err != nil || s.Isolated
}

func (i *Isolator) save(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := i.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing isolation state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing isolation state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing isolation state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing isolation state: %w", err)
	}
	if err := os.Rename(tmp, i.path); err != nil {
		return fmt.Errorf("writing isolation state: %w", err)
	}
	return nil
}

// Restore brings the firewall in line with the persisted state; the
// agent calls it at start before anything else uses the network. An
// isolated host is isolated again with its saved policy; otherwise a
// table left behind (by a crash in the middle of a release) is removed.
func (i *Isolator) Restore() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	s, err := i.State()
	if err != nil {
		return err
	}
	if s.Isolated {
		if err := i.fw.Apply(Rules(s.Policy)); err != nil {
			return fmt.Errorf("re-applying isolation: %w", err)
		}
		i.log.Warn("host is isolated; isolation re-applied", "since", s.Since, "command", s.Command)
		return nil
	}
	if ok, err := i.fw.Present(); err == nil && ok {
		i.log.Warn("removing a leftover isolation table; the saved state says not isolated")
		return i.fw.Remove()
	}
	return nil
}

// Verify checks, while the host is isolated, that the firewall still
// holds the saved policy's rules, and re-applies them when it does not
// (the table deleted or changed by someone else). It returns what was
// wrong when it re-applied the rules, and "" when nothing was wrong or
// the host is not isolated. The agent calls it periodically.
func (i *Isolator) Verify() (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	s, err := i.State()
	if err != nil {
		return "", err
	}
	if !s.Isolated {
		return "", nil
	}
	rules := Rules(s.Policy)
	cause := i.fw.Check(rules)
	if cause == nil {
		return "", nil
	}
	if err := i.fw.Apply(rules); err != nil {
		return cause.Error(), fmt.Errorf("re-applying isolation after %v: %w", cause, err)
	}
	i.log.Warn("isolation rules were removed or changed; re-applied", "problem", cause, "since", s.Since, "command", s.Command)
	return cause.Error(), nil
}

// Request is one isolation request.
type Request struct {
	Policy  Policy
	Command string
	// BreakGlassSHA256 is the hex SHA-256 of the local release code.
	BreakGlassSHA256 string
	// Channel must return nil only after a round trip with the collector
	// over the connection isolation has to keep.
	Channel func(ctx context.Context) error
	// Probe is a UDP host:port outside the allowances; DefaultProbe when
	// empty.
	Probe string
}

// Isolate installs the rules, then proves them: the kernel holds the
// table as written, the collector channel still answers, and a datagram
// to the probe cannot leave. If any proof fails the rules are removed
// again (within RollbackWithin) and the error says why.
func (i *Isolator) Isolate(ctx context.Context, req Request) (string, error) {
	if err := req.Policy.Validate(); err != nil {
		return "", err
	}
	if req.Probe == "" {
		req.Probe = DefaultProbe
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	prev, err := i.State()
	if err != nil {
		return "", err
	}
	rules := Rules(req.Policy)
	start := time.Now()
	if err := i.fw.Apply(rules); err != nil {
		return "", err
	}
	st := State{Isolated: true, Since: start.UTC(), Command: req.Command, Policy: req.Policy, BreakGlassSHA256: req.BreakGlassSHA256}
	if prev.Isolated && st.BreakGlassSHA256 == "" {
		st.BreakGlassSHA256 = prev.BreakGlassSHA256
	}
	// Saved before the proof: should the agent die while proving, it
	// comes back isolated rather than open.
	if err := i.save(st); err != nil {
		return "", i.rollback(prev, err)
	}
	proofCtx, cancel := context.WithDeadline(ctx, start.Add(RollbackWithin-2*time.Second))
	defer cancel()
	if err := i.fw.Check(rules); err != nil {
		return "", i.rollback(prev, fmt.Errorf("the kernel does not hold the rules as written: %w", err))
	}
	chStart := time.Now()
	if err := req.Channel(proofCtx); err != nil {
		return "", i.rollback(prev, fmt.Errorf("the collector channel did not answer through the isolation: %w", err))
	}
	rtt := time.Since(chStart)
	probeErr := i.probe(proofCtx, req.Probe)
	if probeErr == nil {
		return "", i.rollback(prev, fmt.Errorf("a datagram to %s still left the host", req.Probe))
	}
	i.log.Warn("host isolated", "command", req.Command, "rules", len(rules), "took", time.Since(start).Round(time.Millisecond))
	return fmt.Sprintf("isolated: table inet %s with %d rules, drop policy in and out; collector channel answered in %s; probe to %s blocked (%s)",
		TableName, len(rules), rtt.Round(time.Millisecond), req.Probe, short(probeErr)), nil
}

// rollback puts the firewall and the state back to prev after a failed
// isolation and returns cause with what the rollback did.
func (i *Isolator) rollback(prev State, cause error) error {
	var err error
	if prev.Isolated {
		err = i.fw.Apply(Rules(prev.Policy))
	} else {
		err = i.fw.Remove()
	}
	err = errors.Join(err, i.save(prev))
	if err != nil {
		i.log.Error("rolling back a failed isolation", "cause", cause, "err", err)
		return fmt.Errorf("isolation failed: %w; and rolling back failed: %v", cause, err)
	}
	i.log.Error("isolation failed and was rolled back", "cause", cause)
	if prev.Isolated {
		return fmt.Errorf("isolation failed and was rolled back to the previous isolation: %w", cause)
	}
	return fmt.Errorf("isolation failed and was rolled back; the host is not isolated: %w", cause)
}

// Release deletes Cordon's table and records the host as released.
func (i *Isolator) Release(reason string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	s, err := i.State()
	if err != nil {
		return "", err
	}
	if err := i.fw.Remove(); err != nil {
		if !s.Isolated {
			return "not isolated; nothing to release", nil
		}
		return "", err
	}
	if ok, err := i.fw.Present(); err != nil {
		return "", err
	} else if ok {
		return "", fmt.Errorf("table inet %s is still present after deleting it", TableName)
	}
	if err := i.save(State{}); err != nil {
		return "", err
	}
	i.log.Warn("host released from isolation", "reason", reason, "isolated_since", s.Since)
	if !s.Isolated {
		return "not isolated; nothing to release", nil
	}
	return fmt.Sprintf("released: table inet %s deleted (isolated since %s)", TableName, s.Since.Format(time.RFC3339)), nil
}

// ErrBadCode is returned for a wrong break-glass code.
var ErrBadCode = errors.New("break-glass code does not match this agent's")

// BreakGlass releases the host with the local code the collector shows
// admins.
func (i *Isolator) BreakGlass(code string) (string, error) {
	s, err := i.State()
	if err != nil {
		return "", err
	}
	if !s.Isolated {
		return "not isolated; nothing to release", nil
	}
	if s.BreakGlassSHA256 == "" {
		return "", errors.New("this isolation carries no break-glass code (the collector sent none)")
	}
	if subtle.ConstantTimeCompare([]byte(protocol.BreakGlassHash(code)), []byte(s.BreakGlassSHA256)) != 1 {
		return "", ErrBadCode
	}
	return i.Release("break-glass code")
}

// probe sends one datagram to addr and returns nil only if it left.
func probe(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte{0})
	return err
}

func short(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
