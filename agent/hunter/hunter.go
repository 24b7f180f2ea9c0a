package hunter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// Limits of an answer.
const (
	// DefaultBudget is the time budget when a request names none;
	// MaxBudget caps what a request may ask for.
	DefaultBudget = 30 * time.Second
	MaxBudget     = 10 * time.Minute
	// DefaultMaxMatches and MaxMatches bound the matches returned.
	DefaultMaxMatches = 1000
	MaxMatches        = 10000
	// MaxResultBytes keeps an answer well inside a protocol frame.
	MaxResultBytes = 3 << 20
	// MaxFiles bounds the files looked at on disk for one hunt.
	MaxFiles = 50000
	// DefaultHashMax is the largest file hashed on disk.
	DefaultHashMax = 64 << 20
)

// Sources of a match.
const (
	SourceHistory = "history"
	SourceProcess = "process"
	SourceSocket  = "socket"
	SourceFile    = "file"
)

// State lists what is true on the host now, as events.
type State interface {
	Processes(ctx context.Context) ([]ecs.Event, error)
	Sockets(ctx context.Context) ([]ecs.Event, error)
}

// Config configures a Hunter.
type Config struct {
	// History is the event history; nil answers from current state only.
	History *history.Store
	// State lists processes and sockets; nil means the host's (gopsutil).
	State State
	// HashMax is the largest file hashed on disk; DefaultHashMax when 0.
	HashMax int64
	// Exclude lists paths never walked (the agent's state folder).
	Exclude []string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Hunter answers hunts.
type Hunter struct{ cfg Config }

// New returns a Hunter.
func New(cfg Config) *Hunter {
	if cfg.State == nil {
		cfg.State = hostState{}
	}
	if cfg.HashMax <= 0 {
		cfg.HashMax = DefaultHashMax
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Hunter{cfg: cfg}
}

// answer gathers matches within the result budgets.
type answer struct {
	max, bytes int
	matches    []*protocol.HuntMatch
	scanned    uint64
	full       string // why no more matches fit, when they do not
}

func (a *answer) add(ev ecs.Event, source string) bool {
	if a.full != "" {
		return false
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return true
	}
	if len(a.matches) >= a.max {
		a.full = fmt.Sprintf("result-size budget reached: %d matches", a.max)
		return false
	}
	if a.bytes+len(b) > MaxResultBytes {
		a.full = fmt.Sprintf("result-size budget reached: %d bytes", MaxResultBytes)
		return false
	}
	a.bytes += len(b)
	a.matches = append(a.matches, &protocol.HuntMatch{TimeUnixNano: ev.Timestamp.UnixNano(), Source: source, EventJson: b})
	return true
}

// Hunt answers one hunt request.
func (h *Hunter) Hunt(ctx context.Context, req *protocol.HuntRequest) *protocol.HuntResult {
	start := h.cfg.Now()
	res := &protocol.HuntResult{Id: req.GetId()}
	finish := func(status, reason string) *protocol.HuntResult {
		res.Status, res.Reason = status, reason
		res.FinishedUnixNano = h.cfg.Now().UnixNano()
		h.cfg.Logger.Info("hunt answered", "hunt", req.GetId(), "status", status, "matches", len(res.Matches),
			"scanned", res.Scanned, "took", time.Since(start).Round(time.Millisecond), "reason", reason)
		return res
	}
	q, err := query.Parse(req.GetQuery())
	if err != nil {
		return finish("failed", err.Error())
	}
	budget := time.Duration(req.GetBudgetMillis()) * time.Millisecond
	if budget <= 0 {
		budget = DefaultBudget
	}
	budget = min(budget, MaxBudget)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	a := &answer{max: int(req.GetMaxMatches())}
	if a.max <= 0 {
		a.max = DefaultMaxMatches
	}
	a.max = min(a.max, MaxMatches)

	var problems []string
	if h.cfg.History != nil {
		since := time.Time{}
		if ns := req.GetSinceUnixNano(); ns > 0 {
			since = time.Unix(0, ns)
		}
		st, err := h.cfg.History.Search(ctx, q, since, func(ev ecs.Event) bool { return a.add(ev, SourceHistory) })
		a.scanned += uint64(st.Scanned)
		if err != nil && ctx.Err() == nil {
			problems = append(problems, "history: "+err.Error())
		}
	} else {
		problems = append(problems, "this agent keeps no event history")
	}
	for _, src := range []struct {
		name string
		list func(context.Context) ([]ecs.Event, error)
	}{{SourceProcess, h.cfg.State.Processes}, {SourceSocket, h.cfg.State.Sockets}} {
		if a.full != "" || ctx.Err() != nil {
			break
		}
		evs, err := src.list(ctx)
		if err != nil {
			if ctx.Err() == nil {
				problems = append(problems, src.name+": "+err.Error())
			}
			continue
		}
		for i := range evs {
			a.scanned++
			if q.Match(&evs[i]) && !a.add(evs[i], src.name) {
				break
			}
		}
	}
	if a.full == "" && ctx.Err() == nil {
		if err := h.walk(ctx, q, a); err != nil && ctx.Err() == nil {
			problems = append(problems, err.Error())
		}
	}

	sort.SliceStable(a.matches, func(i, j int) bool { return a.matches[i].TimeUnixNano < a.matches[j].TimeUnixNano })
	res.Matches, res.Scanned = a.matches, a.scanned
	switch {
	case a.full != "":
		return finish("partial", a.full)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return finish("partial", fmt.Sprintf("time budget of %s spent", budget))
	case ctx.Err() != nil:
		return finish("partial", "the agent stopped while answering")
	case len(problems) > 0 && h.cfg.History == nil && len(problems) == 1:
		return finish("answered", problems[0])
	case len(problems) > 0:
		return finish("partial", fmt.Sprint(problems))
	}
	return finish("answered", "")
}

// walk looks at the files under the paths the query requires and hashes
// them, matching each as a file event.
func (h *Hunter) walk(ctx context.Context, q *query.Query, a *answer) error {
	files := 0
	var errs []error
	for _, root := range q.PathPrefixes() {
		if !filepath.IsAbs(root) {
			continue
		}
		// A "startswith" prefix may end inside a name: walk its folder.
		walkRoot := root
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			if err != nil {
				walkRoot = filepath.Dir(root)
			}
		}
		err := filepath.WalkDir(walkRoot, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return nil // unreadable: skip
			}
			for _, x := range h.cfg.Exclude {
				if path == x {
					return fs.SkipDir
				}
			}
			if d.IsDir() {
				if path != walkRoot && !underOrAbove(path, root) {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !hasPrefix(path, root) {
				return nil
			}
			files++
			if files > MaxFiles {
				a.full = fmt.Sprintf("file budget reached: %d files", MaxFiles)
				return fs.SkipAll
			}
			ev, ok := h.fileEvent(path)
			if !ok {
				return nil
			}
			a.scanned++
			if q.Match(&ev) && !a.add(ev, SourceFile) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("walking %s: %w", root, err))
		}
		if a.full != "" || ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func hasPrefix(path, prefix string) bool {
	return len(path) >= len(prefix) && path[:len(prefix)] == prefix
}

// underOrAbove reports whether dir may hold paths starting with prefix.
func underOrAbove(dir, prefix string) bool {
	return hasPrefix(dir, prefix) || hasPrefix(prefix, dir+string(filepath.Separator))
}

// fileEvent describes a file on disk as the file sensor would, with its
// hash when it is small enough.
func (h *Hunter) fileEvent(path string) (ecs.Event, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return ecs.Event{}, false
	}
	size := fi.Size()
	f := &ecs.File{
		Path: path, Name: filepath.Base(path), Directory: filepath.Dir(path), Type: "file", Size: &size,
		Mode: strconv.FormatUint(uint64(fi.Mode().Perm()), 8),
	}
	fileOwner(fi, f)
	if size <= h.cfg.HashMax {
		if sum, err := hashFile(path); err == nil {
			f.Hash = &ecs.Hash{SHA256: sum}
		}
	}
	return ecs.Event{
		Timestamp: fi.ModTime().UTC(),
		Event:     ecs.Meta{Category: ecs.CategoryFile, Type: "info", Module: "hunt"},
		File:      f,
	}, true
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(s.Sum(nil)), nil
}
