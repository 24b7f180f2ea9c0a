package registry

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

func helloFrom(hostname string) *protocol.Hello {
	return &protocol.Hello{Host: &protocol.HostFacts{Hostname: hostname, Os: "linux", Arch: "amd64", AgentVersion: "0.1.0"}, SensorModes: []string{"ebpf"}}
}

// BenchmarkFleetHello measures a fleet of 1,000 agents saying hello at
// once, as after a collector restart: each op is one whole fleet, and
// hellos/s is the rate the registry records them (each caller waits for
// its hello to be committed). "changed" hellos carry a new hostname each
// time, "same" ones repeat the stored facts.
func BenchmarkFleetHello(b *testing.B) {
	for _, mode := range []string{"changed", "same"} {
		b.Run(mode, func(b *testing.B) {
			const fleet = 1000
			db, err := store.Open(b.TempDir(), quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			reg := New(Config{DB: db}, quiet)
			ids := make([]string, fleet)
			err = db.Update(func(txn *badger.Txn) error {
				for i := range ids {
					ids[i] = fmt.Sprintf("agent-%04d", i)
					a := &agentRecord{Agent: Agent{ID: ids[i], EnrolledAt: time.Now()}}
					if err := store.Put(txn, agentKey(ids[i]), a); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			hello := func(round int) {
				var wg sync.WaitGroup
				for i, id := range ids {
					name := fmt.Sprintf("host-%d", i)
					if mode == "changed" {
						name = fmt.Sprintf("host-%d-%d", i, round)
					}
					wg.Go(func() {
						if err := reg.Connected(context.Background(), id, helloFrom(name), "127.0.0.1:1"); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			hello(0) // the first hello of each agent is always stored
			round := 0
			for b.Loop() {
				round++
				hello(round)
			}
			b.ReportMetric(float64(fleet*b.N)/b.Elapsed().Seconds(), "hellos/s")
		})
	}
}
