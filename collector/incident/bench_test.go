package incident

import (
	"context"
	"fmt"
	"testing"

	"github.com/cordon-edr/cordon/protocol"
)

// BenchmarkEngineApply correlates findings from the log into incidents
// as Run does, a transaction per batchSize records: eight agents, each
// with a steady stream of findings within the correlation window, so
// every finding joins its agent's incident until it holds MaxFindings
// (the case where an incident's record is largest). One op is one
// finding; the findings are stored before the timer starts.
func BenchmarkEngineApply(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const agents = 8
	for i := 0; i < b.N; {
		for a := range agents {
			var fs []*protocol.Finding
			for range min(100, b.N-i) {
				fs = append(fs, spec{agent: fmt.Sprintf("a%d", a+1), minute: i / 1000}.finding())
				i++
			}
			if len(fs) == 0 {
				break
			}
			if _, _, err := e.findings.Append(ctx, fmt.Sprintf("a%d", a+1), fs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	e.processBy(b, batchSize)
	b.StopTimer()
	if offset, end := e.storedOffset(b), e.findings.End(); offset != end {
		b.Fatalf("applied up to %d, want the log's end %d", offset, end)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "findings/s")
}
