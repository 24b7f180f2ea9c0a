// Package rules is the rule pack shipped inside cordon-agent: the
// SigmaHQ Linux rules (sigma/linux, under the Detection Rule License 1.1
// whose text is in sigma/LICENSE.Detection.Rules.md) and Cordon's own
// Sigma rules for what SigmaHQ lacks (cordon/). Load gives the SigmaHQ
// rules that name no ATT&CK technique one of Cordon's choosing (see
// extraTechniques), so every finding carries a technique.
package rules

import (
	"embed"
	"fmt"

	"github.com/cordon-edr/cordon/detectors/sigma"
)

// FS holds the rule files and their licences.
//
//go:embed sigma cordon
var FS embed.FS

// Pack is one folder of rules in FS.
type Pack struct {
	Name string
	Dir  string
	// License applies to the pack's rules that do not name their own.
	License string
}

// Packs lists the packs in FS, in load order.
var Packs = []Pack{
	{Name: "sigmahq-linux", Dir: "sigma/linux", License: "DRL-1.1"},
	{Name: "cordon", Dir: "cordon", License: "DRL-1.1"},
}

// Load compiles every pack into one set. A rule that fails to compile
// fails the load: the pack is tested, so that is a build defect.
func Load() (*sigma.Set, error) {
	all, err := Builtin()
	if err != nil {
		return nil, err
	}
	return sigma.NewSet(all, sigma.Options{}), nil
}

// Builtin compiles every pack and returns its rules, in load order,
// for Compose.
func Builtin() ([]*sigma.Rule, error) {
	var all []*sigma.Rule
	for _, p := range Packs {
		res, err := sigma.LoadFS(FS, p.Dir)
		if err != nil {
			return nil, fmt.Errorf("loading rule pack %s: %w", p.Name, err)
		}
		rs, err := sigma.Compiled(res)
		if err != nil {
			return nil, fmt.Errorf("compiling rule pack %s: %w", p.Name, err)
		}
		for _, r := range rs {
			if r.License == "" {
				r.License = p.License
			}
			addTechniques(r)
		}
		all = append(all, rs...)
	}
	return all, nil
}
