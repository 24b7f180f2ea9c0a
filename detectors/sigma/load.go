package sigma

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// maxRuleFiles bounds how many files one load reads.
const maxRuleFiles = 10000

// FileResult is the outcome of compiling one rule file.
type FileResult struct {
	File  string
	Rules []*Rule
	Err   error // an *Error when the file does not compile
}

// LoadFS compiles every .yml and .yaml file under root in fsys, in
// lexical order. It returns the result of each file; use Compiled to
// keep the rules and the first error.
func LoadFS(fsys fs.FS, root string) ([]FileResult, error) {
	var out []FileResult
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !IsRuleFile(p) {
			return nil
		}
		if len(out) >= maxRuleFiles {
			return fmt.Errorf("more than %d rule files under %s", maxRuleFiles, root)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rules, err := Parse(p, data)
		out = append(out, FileResult{File: p, Rules: rules, Err: err})
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("reading rules under %s: %w", root, err)
	}
	return out, nil
}

// IsRuleFile reports whether name is a rule file by its extension.
func IsRuleFile(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yml" || ext == ".yaml"
}

// Compiled returns the rules of results, and every file error joined.
func Compiled(results []FileResult) ([]*Rule, error) {
	var rules []*Rule
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		rules = append(rules, r.Rules...)
	}
	return rules, errors.Join(errs...)
}
