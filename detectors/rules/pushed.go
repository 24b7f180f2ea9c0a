package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/sigma"
	"github.com/cordon-edr/cordon/detectors/stateful"
)

// Limits on a pushed rule set. The whole set travels in one frame of
// the control stream (at most 4 MiB), so it stays well below that.
const (
	MaxPushedFiles = 2000
	MaxPushedBytes = 3 << 20
)

// File is one rule file of a pushed set: its slash-separated path inside
// the folder that was pushed, and its YAML.
type File struct {
	Name    string
	Content []byte
}

// SetError is a pushed rule set that does not compile: every problem,
// each with its file and, where known, its line.
type SetError struct {
	Problems []*sigma.Error
}

func (e *SetError) Error() string {
	var b strings.Builder
	b.WriteString("rule set refused")
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, " (%d problems)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("; ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// CompilePushed compiles a pushed rule set with the agent's Sigma engine.
// Beyond compiling, every rule must have an id, no two rules of the set
// may share one, and no rule may take the id of one of the agent's Go
// detectors (those cannot be replaced by a Sigma rule). Any problem
// refuses the whole set with a *SetError.
func CompilePushed(files []File) ([]*sigma.Rule, error) {
	if len(files) == 0 {
		return nil, &SetError{Problems: []*sigma.Error{{File: ".", Err: errors.New("no rule files (.yml, .yaml) in the set")}}}
	}
	if len(files) > MaxPushedFiles {
		return nil, &SetError{Problems: []*sigma.Error{{File: ".", Err: fmt.Errorf("%d rule files, more than the limit of %d", len(files), MaxPushedFiles)}}}
	}
	total := 0
	for _, f := range files {
		total += len(f.Content)
	}
	if total > MaxPushedBytes {
		return nil, &SetError{Problems: []*sigma.Error{{File: ".", Err: fmt.Errorf("the rule files hold %d bytes, more than the limit of %d", total, MaxPushedBytes)}}}
	}
	reserved := goDetectorIDs()
	var (
		problems []*sigma.Error
		out      []*sigma.Rule
		seen     = map[string]*sigma.Rule{}
		names    = map[string]bool{}
	)
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			problems = append(problems, &sigma.Error{File: f.Name, Err: err})
			continue
		}
		if names[f.Name] {
			problems = append(problems, &sigma.Error{File: f.Name, Err: errors.New("file named twice in the set")})
			continue
		}
		names[f.Name] = true
		rs, err := sigma.Parse(f.Name, f.Content)
		if err != nil {
			var se *sigma.Error
			if !errors.As(err, &se) {
				se = &sigma.Error{File: f.Name, Err: err}
			}
			problems = append(problems, se)
			continue
		}
		for _, r := range rs {
			switch {
			case r.ID == "":
				problems = append(problems, &sigma.Error{File: f.Name, Line: r.Line, Err: errors.New("rule has no id: a pushed rule needs one (it is how findings and overrides name it)")})
			case seen[r.ID] != nil:
				o := seen[r.ID]
				problems = append(problems, &sigma.Error{File: f.Name, Line: r.Line, Err: fmt.Errorf("rule id %s is already used by %s:%d", r.ID, o.File, o.Line)})
			case reserved[r.ID] != "":
				problems = append(problems, &sigma.Error{File: f.Name, Line: r.Line, Err: fmt.Errorf("rule id %s belongs to the built-in detector %q, which a Sigma rule cannot replace", r.ID, reserved[r.ID])})
			default:
				seen[r.ID] = r
				out = append(out, r)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &SetError{Problems: problems}
	}
	return out, nil
}

// checkName refuses file names that are not clean relative paths.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("file name is empty")
	case len(name) > 512:
		return errors.New("file name longer than 512 bytes")
	case path.IsAbs(name) || strings.Contains(name, "\\") || path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../"):
		return errors.New("file name must be a clean relative path with forward slashes")
	case !sigma.IsRuleFile(name):
		return errors.New("file name must end in .yml or .yaml")
	}
	return nil
}

// goDetectorIDs maps the rule ids of the Go detectors to their names.
func goDetectorIDs() map[string]string {
	ids := map[string]string{}
	for _, d := range append(detectors.Builtin(), stateful.All(time.Now)...) {
		r := d.Rule()
		ids[r.ID] = r.Name
	}
	return ids
}

// Digest is the hex SHA-256 of a set's file names and contents, in name
// order: two pushes of the same files have the same digest.
func Digest(files []File) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%d:%s%d:", len(f.Name), f.Name, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Compose returns the set an agent runs: the built-in pack, with the
// pushed rules added and any built-in Sigma rule whose id a pushed rule
// takes left out. builtin is what Builtin returns; it is not changed.
func Compose(builtin, pushed []*sigma.Rule) *sigma.Set {
	over := make(map[string]bool, len(pushed))
	for _, r := range pushed {
		over[r.ID] = true
	}
	all := make([]*sigma.Rule, 0, len(builtin)+len(pushed))
	for _, r := range builtin {
		if !over[r.ID] {
			all = append(all, r)
		}
	}
	all = append(all, pushed...)
	return sigma.NewSet(all, sigma.Options{})
}
