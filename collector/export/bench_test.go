package export

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/store"
)

// BenchmarkQueue measures queueing one incident change with its finding
// for three sinks, in its own synced transaction, as the engine does.
func BenchmarkQueue(b *testing.B) {
	o, db := benchOutbox(b, "http://127.0.0.1:1/", 3)
	inc, f := sampleIncident(), sampleFinding()
	for b.Loop() {
		err := store.Update(context.Background(), db, func(txn *badger.Txn) error {
			return o.IncidentChanged(txn, incident.ChangeUpdated, inc, f)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhookDelivery measures delivering queued events to a
// loopback webhook receiver, one sink, in order. Each delivery removes
// its entry in its own synced transaction, which bounds the rate.
func BenchmarkWebhookDelivery(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	o, db := benchOutbox(b, srv.URL, 1)
	inc := sampleIncident()
	// Queue b.N events in transactions of 100.
	for i := 0; i < b.N; i += 100 {
		err := store.Update(context.Background(), db, func(txn *badger.Txn) error {
			for j := i; j < min(i+100, b.N); j++ {
				if err := o.IncidentChanged(txn, incident.ChangeUpdated, inc, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	for got.Load() < int64(b.N) {
		select {
		case err := <-done:
			b.Fatal(err)
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	cancel()
	<-done
}

func benchOutbox(b *testing.B, url string, sinks int) (*Outbox, *badger.DB) {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "db"), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var cfgs []SinkConfig
	for i := range sinks {
		cfgs = append(cfgs, SinkConfig{Name: "s" + string(rune('a'+i)), Type: TypeWebhook, URL: url, Secret: "k", Events: Kinds})
	}
	if err := Validate(cfgs); err != nil {
		b.Fatal(err)
	}
	o, err := New(Config{DB: db, Sinks: cfgs}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	return o, db
}

// BenchmarkSyncedTxn is the baseline of BenchmarkQueue: one synced
// transaction writing one small key, the floor of any durable change.
func BenchmarkSyncedTxn(b *testing.B) {
	_, db := benchOutbox(b, "http://127.0.0.1:1/", 1)
	for b.Loop() {
		err := store.Update(context.Background(), db, func(txn *badger.Txn) error {
			return txn.Set([]byte("bench/key"), []byte("value"))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
