package incident

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// Similar is a closed incident that resembles another one, with what
// they share and how it ended, to help diagnose the new one.
type Similar struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Status   Status    `json:"status"`
	Type     string    `json:"type"`
	Priority string    `json:"priority"`
	ClosedAt time.Time `json:"closed_at"`
	// Shared lists what the two incidents have in common: "rule:…",
	// "sha256:…", "ip:…", "technique:…" and "host:…".
	Shared []string `json:"shared"`
	Review *Review  `json:"review,omitempty"`
}

// maxSimilar caps the similar incidents shown.
const maxSimilar = 5

// traits are what resemblance compares.
func traits(inc *Incident) []string {
	out := slices.Clone(inc.Indicators)
	for _, t := range inc.Techniques {
		out = append(out, "technique:"+t)
	}
	for _, h := range inc.AffectedHosts {
		out = append(out, "host:"+h)
	}
	return union(nil, out)
}

// similar returns the closed incidents (closed, false_positive or
// duplicate) of the same kind (drill or real) that share a trait with
// inc, those sharing most first, then the most recently closed.
func similar(txn *badger.Txn, inc *Incident) ([]Similar, error) {
	mine := traits(inc)
	var out []Similar
	err := eachIncident(txn, func(r *record) error {
		if r.ID == inc.ID || !r.Status.Terminal() || r.Drill != inc.Drill {
			return nil
		}
		var shared []string
		for _, t := range traits(&r.Incident) {
			if _, ok := slices.BinarySearch(mine, t); ok {
				shared = append(shared, t)
			}
		}
		if len(shared) == 0 {
			return nil
		}
		out = append(out, Similar{
			ID: r.ID, Title: r.Title, Status: r.Status, Type: r.Type, Priority: r.Priority,
			ClosedAt: r.ClosedAt, Shared: shared, Review: r.Review,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Similar) int {
		if c := cmp.Compare(len(b.Shared), len(a.Shared)); c != 0 {
			return c
		}
		return b.ClosedAt.Compare(a.ClosedAt)
	})
	return out[:min(len(out), maxSimilar)], nil
}

// eachIncident calls fn with every stored incident.
func eachIncident(txn *badger.Txn, fn func(*record) error) error {
	prefix := store.Prefix("incident")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var r record
		err := it.Item().Value(func(val []byte) error { return store.Decode(val, &r) })
		if err != nil {
			return fmt.Errorf("incident %s: %w", it.Item().Key()[len(prefix):], err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}
