package sigma

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Selection compiles a Sigma search (a map of "field|modifiers: values"
// that must all hold, or a list of such maps of which one must) into a
// test on events, for rule exceptions. Field names and modifiers are
// those of rules; a field Cordon's events lack is an error here, since
// the selection could never match. Errors carry the line in the YAML.
func Selection(n *yaml.Node) (func(*ecs.Event) bool, error) {
	if n == nil {
		return nil, errors.New("empty selection")
	}
	fields := map[fieldID]bool{}
	unknown := map[string]bool{}
	s, err := compileSearch("selection", n, fields, unknown)
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("line %d: %w", le.line, le.err)
		}
		return nil, err
	}
	if len(unknown) > 0 {
		var names []string
		for f := range unknown {
			names = append(names, f)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("line %d: field %s is not in Cordon's events", n.Line, strings.Join(names, ", "))
	}
	return func(ev *ecs.Event) bool {
		var c evalCtx
		c.reset(ev, eventRoute(ev))
		return s.eval(&c)
	}, nil
}
