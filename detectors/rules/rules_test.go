package rules

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/detectors/sigma"
)

// TestEveryRuleCompiles asserts that every rule file of every pack
// compiles, and counts where the SigmaHQ rules run.
func TestEveryRuleCompiles(t *testing.T) {
	routes := map[string]int{}
	files := 0
	for _, p := range Packs {
		res, err := sigma.LoadFS(FS, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			files++
			if r.Err != nil {
				t.Errorf("%v", r.Err)
				continue
			}
			for _, rule := range r.Rules {
				if p.Name == "sigmahq-linux" {
					routes[rule.Route()]++
				}
			}
		}
	}
	// The SigmaHQ Linux rules: 122 process_creation and 15 plain
	// keyword rules run on process starts, 8 on file events, 5 on
	// network connections; the auditd and service rules are not routed.
	want := map[string]int{"process": 137, "file": 8, "network": 5, "": 60}
	for k, n := range want {
		if routes[k] != n {
			t.Errorf("route %q: %d SigmaHQ rules, want %d (all: %v)", k, routes[k], n, routes)
		}
	}
	if files < 210 {
		t.Errorf("%d rule files, want at least the 210 SigmaHQ Linux rules", files)
	}
}

func TestLoad(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range set.Rules() {
		if r.ID == "" {
			t.Errorf("%s: no id", r.File)
		}
		if other, ok := ids[r.ID]; ok {
			t.Errorf("%s and %s share id %s", r.File, other, r.ID)
		}
		ids[r.ID] = r.File
		m := r.Meta("")
		if m.License != "DRL-1.1" {
			t.Errorf("%s: licence %q", r.File, m.License)
		}
		if m.Author == "" {
			t.Errorf("%s: no author; the licence asks that it travels with findings", r.File)
		}
		if ok, _ := r.Routed(); ok && len(m.Techniques) == 0 {
			t.Errorf("%s: a routed rule without an ATT&CK technique", r.File)
		}
	}
	if n := len(set.Detectors()); n < 150 {
		t.Errorf("%d detectors, want at least 150", n)
	}
}

func TestLicencesShipWithTheRules(t *testing.T) {
	for _, name := range []string{"sigma/LICENSE", "sigma/LICENSE.Detection.Rules.md"} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "Detection Rule License") {
			t.Errorf("%s does not name the Detection Rule License", name)
		}
	}
}
