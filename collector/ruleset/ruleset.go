package ruleset

import (
	"context"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/pushset"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/protocol"
)

// Info describes a stored rule set, as the REST API shows it.
type Info struct {
	Version  string    `json:"version"`
	Rules    int       `json:"rules"`
	Files    []string  `json:"files"`
	Digest   string    `json:"sha256"`
	PushedBy string    `json:"pushed_by"`
	PushedAt time.Time `json:"pushed_at"`
}

// File is one rule file of a set.
type File struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// record is a stored version.
type record struct {
	Info
	Seq     uint64 `json:"seq"`
	Sources []File `json:"sources"`
}

var kind = pushset.Kind[record, *protocol.RuleSet]{
	Name:   "rule set",
	Prefix: "ruleset",
	Seq:    func(r *record) uint64 { return r.Seq },
	Digest: func(r *record) string { return r.Digest },
	Wire:   wire,
}

// Store holds the pushed rule sets; Current and Wait serve the gateway.
type Store struct {
	*pushset.Store[record, *protocol.RuleSet]
	log *slog.Logger
}

// New returns a Store over db; now is the clock (time.Now when nil).
func New(db *badger.DB, now func() time.Time, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{Store: pushset.New(db, kind, now), log: log}
}

// Push compiles files and, when every rule compiles, stores them as the
// new current version and wakes the gateway. A set that does not
// compile returns a *rules.SetError and changes nothing. Pushing the
// files of the current version again returns it unchanged.
func (s *Store) Push(ctx context.Context, files []File, pushedBy string) (*Info, error) {
	rf := make([]rules.File, len(files))
	for i, f := range files {
		rf[i] = rules.File{Name: f.Name, Content: f.Content}
	}
	compiled, err := rules.CompilePushed(rf)
	if err != nil {
		return nil, err
	}
	digest := rules.Digest(rf)
	out, err := s.Store.Push(ctx, digest, func(seq uint64, version string, at time.Time) *record {
		rec := &record{Seq: seq, Sources: files, Info: Info{
			Version:  version,
			Rules:    len(compiled),
			Digest:   digest,
			PushedBy: pushedBy,
			PushedAt: at,
		}}
		for _, f := range files {
			rec.Info.Files = append(rec.Info.Files, f.Name)
		}
		return rec
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("rule set pushed", "version", out.Version, "rules", out.Rules, "files", len(out.Files), "by", pushedBy)
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

func wire(rec *record) *protocol.RuleSet {
	rs := &protocol.RuleSet{Version: rec.Version, PushedBy: rec.PushedBy, PushedUnixNano: rec.PushedAt.UnixNano()}
	for _, f := range rec.Sources {
		rs.Files = append(rs.Files, &protocol.RuleFile{Name: f.Name, Content: f.Content})
	}
	return rs
}
