package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/detectors/sigma"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/certs"
)

// rulesFile is where the state folder keeps the pushed rule set, so that
// a restart runs it again before the collector is reachable.
const rulesFile = "rules.json"

// storedRules is the pushed rule set as the state folder keeps it.
type storedRules struct {
	Version  string       `json:"version"`
	PushedBy string       `json:"pushed_by,omitempty"`
	PushedAt time.Time    `json:"pushed_at,omitzero"`
	Files    []storedFile `json:"files"`
}

type storedFile struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// ruleSets knows the built-in pack, the pushed set the agent runs and
// the last set it refused. Compile and persist are called by one
// goroutine at a time (the uplink's); the getters from anywhere.
type ruleSets struct {
	path    string
	builtin []*sigma.Rule
	log     *slog.Logger

	mu      sync.Mutex
	version string // of the pushed set running, "" for the built-in pack only
	count   int    // rules of the running Sigma set
	refused string // why the last set was refused
}

func newRuleSets(stateDir string, log *slog.Logger) (*ruleSets, error) {
	builtin, err := rules.Builtin()
	if err != nil {
		return nil, err
	}
	return &ruleSets{path: filepath.Join(stateDir, rulesFile), builtin: builtin, log: log, count: len(builtin)}, nil
}

// compile turns a pushed set into the Sigma set to run: the built-in
// pack with the pushed rules added or overriding.
func (r *ruleSets) compile(files []rules.File) (*sigma.Set, error) {
	pushed, err := rules.CompilePushed(files)
	if err != nil {
		return nil, err
	}
	return rules.Compose(r.builtin, pushed), nil
}

// initial returns the set to start with: the stored pushed set, or the
// built-in pack when none is stored or the stored one no longer
// compiles (then the collector sends its set again after the hello).
func (r *ruleSets) initial() *sigma.Set {
	st, err := r.read()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Error("reading the stored rule set; running the built-in pack", "file", r.path, "err", err)
		}
		return rules.Compose(r.builtin, nil)
	}
	set, err := r.compile(st.files())
	if err != nil {
		r.log.Error("the stored rule set does not compile; running the built-in pack", "version", st.Version, "err", err)
		return rules.Compose(r.builtin, nil)
	}
	r.mu.Lock()
	r.version, r.count = st.Version, len(set.Rules())
	r.mu.Unlock()
	r.log.Info("running the stored rule set", "version", st.Version, "rules", len(set.Rules()))
	return set
}

func (r *ruleSets) read() (*storedRules, error) {
	b, err := os.ReadFile(r.path)
	if err != nil {
		return nil, err
	}
	var st storedRules
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.path, err)
	}
	return &st, nil
}

func (st *storedRules) files() []rules.File {
	out := make([]rules.File, len(st.Files))
	for i, f := range st.Files {
		out[i] = rules.File{Name: f.Name, Content: f.Content}
	}
	return out
}

// persist stores rs so that a restart keeps it.
func (r *ruleSets) persist(rs *protocol.RuleSet) error {
	st := storedRules{Version: rs.GetVersion(), PushedBy: rs.GetPushedBy()}
	if n := rs.GetPushedUnixNano(); n != 0 {
		st.PushedAt = time.Unix(0, n).UTC()
	}
	for _, f := range rs.GetFiles() {
		st.Files = append(st.Files, storedFile{Name: f.GetName(), Content: f.GetContent()})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding rule set %s: %w", rs.GetVersion(), err)
	}
	if err := certs.WriteFileAtomic(r.path, b, 0o600); err != nil {
		return fmt.Errorf("storing rule set %s: %w", rs.GetVersion(), err)
	}
	return nil
}

func (r *ruleSets) running(version string, count int) {
	r.mu.Lock()
	r.version, r.count, r.refused = version, count, ""
	r.mu.Unlock()
}

func (r *ruleSets) refuse(version string, err error) {
	r.mu.Lock()
	r.refused = fmt.Sprintf("refused rule set %s: %v", version, err)
	r.mu.Unlock()
}

// state returns the version running, the rule count of the Sigma set and
// the last refusal.
func (r *ruleSets) state() (version string, count int, refused string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version, r.count, r.refused
}

// batchSwap asks the detection goroutine to put batch in the place of
// the batch id (the Sigma set or the indicator set); done is closed once
// it does.
type batchSwap struct {
	id    detectors.BatchID
	batch detectors.Batch
	done  chan struct{}
}

// applyRules runs a set pushed by the collector, whole or not at all: it
// compiles the set, stores it in the state folder, then has the
// detection goroutine swap it in between two events. On any error the
// rules running before keep running and the answer says why.
func (a *Agent) applyRules(ctx context.Context, rs *protocol.RuleSet) *protocol.RuleSetResult {
	res := &protocol.RuleSetResult{Version: rs.GetVersion()}
	err := a.swapRules(ctx, rs)
	if err != nil {
		a.rules.refuse(rs.GetVersion(), err)
		a.log.Warn("rule set refused; the previous rules keep running", "version", rs.GetVersion(), "err", err)
		res.Error = err.Error()
		return res
	}
	_, n, _ := a.rules.state()
	a.log.Info("rule set applied", "version", rs.GetVersion(), "rules", n, "pushed_by", rs.GetPushedBy())
	res.Ok, res.Rules = true, uint32(n)
	return res
}

func (a *Agent) swapRules(ctx context.Context, rs *protocol.RuleSet) error {
	if rs.GetVersion() == "" {
		return errors.New("rule set has no version")
	}
	files := make([]rules.File, len(rs.GetFiles()))
	for i, f := range rs.GetFiles() {
		files[i] = rules.File{Name: f.GetName(), Content: f.GetContent()}
	}
	set, err := a.rules.compile(files)
	if err != nil {
		return err
	}
	if err := a.rules.persist(rs); err != nil {
		return err
	}
	if err := a.swapBatch(ctx, a.sigma, set.Batch()); err != nil {
		return fmt.Errorf("swapping in rule set %s: %w", rs.GetVersion(), err)
	}
	a.rules.running(rs.GetVersion(), len(set.Rules()))
	return nil
}
