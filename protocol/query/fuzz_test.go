package query

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`process.executable endswith "/xmrig" and user.name != "root"`,
		`destination.ip in 203.0.113.0/24`,
		`not (file.path startswith "/tmp" or process.pid > 10)`,
		`process.name in ["a", b, "c\"d"]`,
		`process.command_line matches "(?i)curl.*\\|\\s*sh"`,
	} {
		f.Add(s)
	}
	evs := sampleEvents()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) returned %T, not a query error", s, err)
			}
			if qe.Pos < 1 || qe.Pos > len(s)+1 && len(s) <= MaxLength {
				t.Fatalf("Parse(%q): position %d outside the query", s, qe.Pos)
			}
			return
		}
		for _, ev := range evs {
			q.Match(ev)
		}
		q.Equalities()
		q.PathPrefixes()
	})
}
