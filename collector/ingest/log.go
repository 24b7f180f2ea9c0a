package ingest

import (
	"context"

	"github.com/cordon-edr/cordon/protocol"
)

// Log is the append-only findings log.
type Log interface {
	// Append stores the batch durably before it returns; findings whose
	// id is already stored are counted as duplicates and left untouched.
	Append(ctx context.Context, agentID string, findings []*protocol.Finding) (stored, duplicates int, err error)
	// Read returns up to limit records from offset from on, oldest
	// first, and the offset to read next, past the positions left empty
	// (by duplicates) when it read to the end. Offsets start at 1; 0
	// reads from the beginning.
	Read(ctx context.Context, from uint64, limit int) (recs []Record, next uint64, err error)
	// Notify returns a channel closed at the next successful Append that
	// stored something. Take it before Read so that no append is missed.
	Notify() <-chan struct{}
}

// Record is one entry of the log: a finding and its offset.
type Record struct {
	Seq     uint64
	Finding *Finding
}
