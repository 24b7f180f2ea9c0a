package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
)

// Agents names the hosts of incidents and findings.
type Agents interface {
	Lookup(agentID string) (hostname string, tags map[string]string, ok bool)
}

// Config configures an Outbox.
type Config struct {
	DB    *badger.DB
	Sinks []SinkConfig
	// Agents fills in hostnames; optional.
	Agents Agents
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Outbox queues events for the configured sinks in the store and
// delivers them. It implements incident.Hook.
type Outbox struct {
	db     *badger.DB
	agents Agents
	now    func() time.Time
	log    *slog.Logger
	sinks  []*sink
	byName map[string]*sink
	seq    atomic.Uint64
}

var (
	_ incident.Hook = (*Outbox)(nil)
	_ command.Hook  = (*Outbox)(nil)
)

// sink is one configured sink with its counters.
type sink struct {
	cfg  SinkConfig
	snd  sender
	wake chan struct{}

	delivered, failed, dead atomic.Uint64

	mu            sync.Mutex
	lastError     string
	lastErrorAt   time.Time
	lastDelivered time.Time
}

func (s *sink) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// entry is one queued event as stored.
type entry struct {
	Event     Event     `json:"event"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	QueuedAt  time.Time `json:"queued_at"`
}

var (
	queueRoot = store.Prefix("xq")
	deadRoot  = store.Prefix("xd")
)

func queuePrefix(sink string) []byte { return store.Prefix("xq", sink) }
func deadPrefix(sink string) []byte  { return store.Prefix("xd", sink) }
func queueKey(sink string, seq uint64) []byte {
	return store.Key("xq", sink, store.U64(seq))
}
func deadKey(sink string, seq uint64) []byte { return store.Key("xd", sink, store.U64(seq)) }

// New returns an Outbox for cfg.Sinks, which Validate must have
// checked. Run delivers.
func New(cfg Config, log *slog.Logger) (*Outbox, error) {
	o := &Outbox{db: cfg.DB, agents: cfg.Agents, now: cfg.Now, log: log, byName: map[string]*sink{}}
	if o.now == nil {
		o.now = time.Now
	}
	for _, c := range cfg.Sinks {
		s := &sink{cfg: c, wake: make(chan struct{}, 1)}
		snd, err := newSender(&s.cfg)
		if err != nil {
			return nil, fmt.Errorf("export sink %s: %w", c.Name, err)
		}
		s.snd = snd
		o.sinks = append(o.sinks, s)
		o.byName[c.Name] = s
	}
	last, err := o.lastSeq()
	if err != nil {
		return nil, err
	}
	o.seq.Store(last)
	return o, nil
}

// lastSeq finds the highest sequence number in any queue, so new entries
// sort after the ones a previous run left.
func (o *Outbox) lastSeq() (uint64, error) {
	var last uint64
	err := o.db.View(func(txn *badger.Txn) error {
		for _, root := range [][]byte{queueRoot, deadRoot} {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = root
			opts.PrefetchValues = false
			it := txn.NewIterator(opts)
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()
				if len(k) < 8 {
					continue
				}
				if n, err := store.ParseU64(k[len(k)-8:]); err == nil && n > last {
					last = n
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading the export queues: %w", err)
	}
	return last, nil
}

// IncidentChanged implements incident.Hook: inside txn, it queues an
// incident event, and a finding event when a finding caused the change,
// for every sink that wants them.
func (o *Outbox) IncidentChanged(txn *badger.Txn, change string, inc *incident.Incident, cause *ingest.Finding) error {
	if len(o.sinks) == 0 {
		return nil
	}
	now := o.now().UTC()
	if cause != nil {
		ev := Event{Kind: KindFinding, At: now, Finding: cause, Hosts: o.hosts([]string{cause.AgentID})}
		if err := o.enqueue(txn, &ev); err != nil {
			return err
		}
	}
	ev := Event{Kind: "incident." + change, At: now, Incident: inc, Hosts: o.hosts(inc.AffectedHosts)}
	if change == incident.ChangeOpened {
		ev.Finding = cause
	}
	return o.enqueue(txn, &ev)
}

// CommandChanged implements command.Hook: inside txn, it queues a
// command.requested event for a new command and a command.finished
// event for one that finished.
func (o *Outbox) CommandChanged(txn *badger.Txn, c *command.Command) error {
	if len(o.sinks) == 0 {
		return nil
	}
	kind := KindCommandFinished
	if c.Status == command.StatusPending {
		kind = KindCommandQueued
	}
	ev := Event{Kind: kind, At: o.now().UTC(), Command: c, Hosts: o.hosts([]string{c.AgentID})}
	return o.enqueue(txn, &ev)
}

func (o *Outbox) hosts(ids []string) []Host {
	out := make([]Host, 0, len(ids))
	for _, id := range ids {
		h := Host{ID: id}
		if o.agents != nil {
			h.Name, _, _ = o.agents.Lookup(id)
		}
		out = append(out, h)
	}
	return out
}

func (o *Outbox) enqueue(txn *badger.Txn, ev *Event) error {
	var wanted []*sink
	for _, s := range o.sinks {
		if s.cfg.wants(ev) {
			wanted = append(wanted, s)
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("minting an event id: %w", err)
	}
	ev.ID = id.String()
	e := entry{Event: *ev, QueuedAt: ev.At}
	for _, s := range wanted {
		if err := store.Put(txn, queueKey(s.cfg.Name, o.seq.Add(1)), &e); err != nil {
			return fmt.Errorf("queueing %s for sink %s: %w", ev.Kind, s.cfg.Name, err)
		}
	}
	return nil
}

// Run delivers the queues until ctx ends, one worker per sink.
func (o *Outbox) Run(ctx context.Context) error {
	if len(o.sinks) == 0 {
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	// Wake a sink's worker after each commit that queued for it.
	g.Go(func() error {
		err := o.db.Subscribe(ctx, func(kvs *pb.KVList) error {
			for _, kv := range kvs.Kv {
				k := kv.Key[len(queueRoot):]
				for _, s := range o.sinks {
					n := len(s.cfg.Name)
					if len(k) > n && string(k[:n]) == s.cfg.Name && k[n] == '/' {
						s.poke()
					}
				}
			}
			return nil
		}, []pb.Match{{Prefix: queueRoot}})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("watching the export queues: %w", err)
		}
		return nil
	})
	for _, s := range o.sinks {
		g.Go(func() error { return o.work(ctx, s) })
	}
	return g.Wait()
}

// idlePoll is how often an idle worker looks at its queue without being
// woken.
const idlePoll = 5 * time.Second

// work delivers s's queue in order until ctx ends.
func (o *Outbox) work(ctx context.Context, s *sink) error {
	snd := s.snd
	defer snd.Close()
	log := o.log.With("sink", s.cfg.Name)
	for {
		key, e, err := o.head(s.cfg.Name)
		if err != nil {
			return fmt.Errorf("export sink %s: %w", s.cfg.Name, err)
		}
		if e == nil {
			// Commits wake the worker; the timer covers one that
			// happened before the subscription was in place.
			t := time.NewTimer(idlePoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-s.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if d := e.NextAt.Sub(o.now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err = snd.Send(sctx, &e.Event)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := o.settle(ctx, s, key, e, err, log); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("export sink %s: %w", s.cfg.Name, err)
		}
	}
}

// head returns the first entry of a sink's queue, or nil.
func (o *Outbox) head(name string) ([]byte, *entry, error) {
	var key []byte
	var e *entry
	err := o.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = queuePrefix(name)
		opts.PrefetchSize = 1
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		key = it.Item().KeyCopy(nil)
		e = new(entry)
		return it.Item().Value(func(v []byte) error { return store.Decode(v, e) })
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the queue: %w", err)
	}
	return key, e, nil
}

// settle records the outcome of one delivery attempt.
func (o *Outbox) settle(ctx context.Context, s *sink, key []byte, e *entry, sendErr error, log *slog.Logger) error {
	now := o.now().UTC()
	if sendErr == nil {
		err := store.Update(ctx, o.db, func(txn *badger.Txn) error { return txn.Delete(key) })
		if err != nil {
			return fmt.Errorf("removing a delivered event: %w", err)
		}
		s.delivered.Add(1)
		s.mu.Lock()
		s.lastDelivered = now
		s.mu.Unlock()
		return nil
	}
	s.failed.Add(1)
	s.mu.Lock()
	s.lastError, s.lastErrorAt = sendErr.Error(), now
	s.mu.Unlock()
	e.Attempts++
	e.LastError = sendErr.Error()
	var perm *PermanentError
	if e.Attempts >= s.cfg.MaxAttempts || errors.As(sendErr, &perm) {
		seq, _ := store.ParseU64(key[len(key)-8:])
		err := store.Update(ctx, o.db, func(txn *badger.Txn) error {
			if err := txn.Delete(key); err != nil {
				return err
			}
			return store.Put(txn, deadKey(s.cfg.Name, seq), e)
		})
		if err != nil {
			return fmt.Errorf("parking an event in the dead-letter queue: %w", err)
		}
		s.dead.Add(1)
		log.Error("export: event parked in the dead-letter queue", "event", e.Event.ID, "kind", e.Event.Kind,
			"attempts", e.Attempts, "err", sendErr)
		return nil
	}
	e.NextAt = now.Add(backoff(&s.cfg, e.Attempts))
	log.Warn("export: delivery failed, will retry", "event", e.Event.ID, "kind", e.Event.Kind,
		"attempts", e.Attempts, "retry_at", e.NextAt, "err", sendErr)
	err := store.Update(ctx, o.db, func(txn *badger.Txn) error { return store.Put(txn, key, e) })
	if err != nil {
		return fmt.Errorf("recording a failed delivery: %w", err)
	}
	return nil
}

// backoff is the wait after the n-th failed attempt: retry_initial
// doubled each time up to retry_max, less up to a fifth at random so
// that sinks failing together do not retry together.
func backoff(c *SinkConfig, n int) time.Duration {
	d := c.RetryInitial
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// ErrUnknownSink is the error of Replay for a sink not configured.
var ErrUnknownSink = errors.New("no such export sink")

// Replay moves the dead-letter queue of a sink back to the end of its
// queue, attempts reset, and returns how many events it moved.
func (o *Outbox) Replay(ctx context.Context, name string) (int, error) {
	s := o.byName[name]
	if s == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownSink, name)
	}
	total := 0
	for {
		moved := 0
		err := store.Update(ctx, o.db, func(txn *badger.Txn) error {
			moved = 0
			opts := badger.DefaultIteratorOptions
			opts.Prefix = deadPrefix(name)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Rewind(); it.Valid() && moved < 256; it.Next() {
				var e entry
				if err := it.Item().Value(func(v []byte) error { return store.Decode(v, &e) }); err != nil {
					return err
				}
				e.Attempts, e.NextAt = 0, time.Time{}
				if err := txn.Delete(it.Item().KeyCopy(nil)); err != nil {
					return err
				}
				if err := store.Put(txn, queueKey(name, o.seq.Add(1)), &e); err != nil {
					return err
				}
				moved++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("replaying the dead-letter queue of %s: %w", name, err)
		}
		total += moved
		if moved < 256 {
			break
		}
	}
	s.poke()
	o.log.Info("export: dead-letter queue replayed", "sink", name, "events", total)
	return total, nil
}

// SinkStatus is the state of one sink, as the API shows it.
type SinkStatus struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Target is where the sink sends: a URL, address or path.
	Target string `json:"target"`
	Format string `json:"format,omitempty"`
	// Queued and DeadLettered count the events in the store now.
	Queued int `json:"queued"`
	Dead   int `json:"dead_lettered"`
	// Counters since the collector started.
	DeliveredTotal    uint64 `json:"delivered_total"`
	FailedTotal       uint64 `json:"failed_total"`
	DeadLetteredTotal uint64 `json:"dead_lettered_total"`
	// OldestQueuedAt is when the head of the queue was queued.
	OldestQueuedAt  time.Time `json:"oldest_queued_at,omitzero"`
	NextAttemptAt   time.Time `json:"next_attempt_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
}

// Status returns the state of every configured sink, in configuration
// order.
func (o *Outbox) Status(ctx context.Context) ([]SinkStatus, error) {
	out := make([]SinkStatus, 0, len(o.sinks))
	err := o.db.View(func(txn *badger.Txn) error {
		for _, s := range o.sinks {
			st := SinkStatus{
				Name: s.cfg.Name, Type: s.cfg.Type, Target: s.cfg.target(), Format: s.cfg.Format,
				DeliveredTotal: s.delivered.Load(), FailedTotal: s.failed.Load(), DeadLetteredTotal: s.dead.Load(),
			}
			s.mu.Lock()
			st.LastError, st.LastErrorAt, st.LastDeliveredAt = s.lastError, s.lastErrorAt, s.lastDelivered
			s.mu.Unlock()
			n, head, err := count(txn, queuePrefix(s.cfg.Name))
			if err != nil {
				return err
			}
			st.Queued = n
			if head != nil {
				st.OldestQueuedAt, st.NextAttemptAt = head.QueuedAt, head.NextAt
				if head.LastError != "" {
					st.LastError = head.LastError
				}
			}
			if st.Dead, _, err = count(txn, deadPrefix(s.cfg.Name)); err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the export queues: %w", err)
	}
	return out, nil
}

// count counts the keys under prefix and decodes the first.
func count(txn *badger.Txn, prefix []byte) (int, *entry, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	n := 0
	var head *entry
	for it.Rewind(); it.Valid(); it.Next() {
		if n == 0 {
			head = new(entry)
			if err := it.Item().Value(func(v []byte) error { return store.Decode(v, head) }); err != nil {
				return 0, nil, err
			}
		}
		n++
	}
	return n, head, nil
}

// Sinks returns the names of the configured sinks.
func (o *Outbox) Sinks() []string {
	out := make([]string, len(o.sinks))
	for i, s := range o.sinks {
		out[i] = s.cfg.Name
	}
	return out
}
