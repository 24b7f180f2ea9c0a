package iocset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/pushset"
	"github.com/cordon-edr/cordon/detectors/ioc"
	"github.com/cordon-edr/cordon/protocol"
)

// Info describes a stored set, as the REST API shows it.
type Info struct {
	Version    string         `json:"version"`
	Indicators int            `json:"indicators"`
	Types      map[string]int `json:"types"`
	Name       string         `json:"name,omitempty"`
	Digest     string         `json:"sha256"`
	PushedBy   string         `json:"pushed_by"`
	PushedAt   time.Time      `json:"pushed_at"`
}

type record struct {
	Info
	Seq        uint64          `json:"seq"`
	Indicators []ioc.Indicator `json:"list"`
}

var kind = pushset.Kind[record, *protocol.IndicatorSet]{
	Name:   "indicator set",
	Prefix: "iocset",
	Seq:    func(r *record) uint64 { return r.Seq },
	Digest: func(r *record) string { return r.Digest },
	Wire:   wire,
}

// Store holds the pushed indicator sets; Current and Wait serve the
// gateway.
type Store struct {
	*pushset.Store[record, *protocol.IndicatorSet]
	log *slog.Logger
}

// New returns a Store over db; now is the clock (time.Now when nil).
func New(db *badger.DB, now func() time.Time, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{Store: pushset.New(db, kind, now), log: log}
}

// digest is the SHA-256 of the normalized indicators in a fixed order, so
// the same indicators pushed again, from CSV or STIX, are the same set.
func digest(inds []ioc.Indicator) string {
	sorted := append([]ioc.Indicator(nil), inds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	h := sha256.New()
	for _, i := range sorted {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", i.Type, i.Value, i.Severity, i.Note)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Push parses content (CSV or a STIX 2.1 bundle) and, when every
// indicator is valid, stores the set as the new current version and wakes
// the gateway. A bad set returns an *ioc.Error and changes nothing.
// Pushing the indicators of the current version again returns it
// unchanged.
func (s *Store) Push(ctx context.Context, name string, content []byte, pushedBy string) (*Info, error) {
	inds, err := ioc.Parse(content)
	if err != nil {
		return nil, err
	}
	sum := digest(inds)
	out, err := s.Store.Push(ctx, sum, func(seq uint64, version string, at time.Time) *record {
		types := map[string]int{}
		for _, i := range inds {
			types[i.Type]++
		}
		return &record{Seq: seq, Indicators: inds, Info: Info{
			Version:    version,
			Indicators: len(inds),
			Types:      types,
			Name:       name,
			Digest:     sum,
			PushedBy:   pushedBy,
			PushedAt:   at,
		}}
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("indicator set pushed", "version", out.Version, "indicators", out.Info.Indicators, "by", pushedBy)
	info := out.Info
	return &info, nil
}

// Info returns the current set's description, or a store.ErrNotFound
// error when nothing was pushed yet.
func (s *Store) Info(ctx context.Context) (*Info, error) {
	rec, err := s.Latest(ctx)
	if err != nil {
		return nil, err
	}
	return &rec.Info, nil
}

func wire(rec *record) *protocol.IndicatorSet {
	set := &protocol.IndicatorSet{Version: rec.Version, PushedBy: rec.PushedBy, PushedUnixNano: rec.PushedAt.UnixNano()}
	for _, i := range rec.Indicators {
		set.Indicators = append(set.Indicators, &protocol.Indicator{Type: i.Type, Value: i.Value, Severity: i.Severity, Note: i.Note})
	}
	return set
}
