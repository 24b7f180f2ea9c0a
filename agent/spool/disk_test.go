package spool

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/protocol"
)

// Under the reserve only high and critical findings are stored, under
// the hard reserve none; drops are counted per severity, the status says
// the queue is full for lack of disk, and writing resumes when space
// returns.
func TestDiskReserve(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	var free uint64 = 100 << 20
	var freeErr error
	q := openQueue(t, db, Options{
		FreeSpace:   func() (uint64, error) { return free, freeErr },
		Reserve:     10 << 20,
		HardReserve: 5 << 20,
	})
	mk := func(sev string) *protocol.Finding {
		f := newFinding(t, sev)
		f.Severity = sev
		return f
	}
	var kept []*protocol.Finding
	for _, step := range []struct {
		free    uint64
		sev     string
		wantErr error
	}{
		{100 << 20, "low", nil},
		{10 << 20, "low", nil}, // at the reserve: still room
		{10<<20 - 1, "low", ErrDiskFull},
		{10<<20 - 1, "medium", ErrDiskFull},
		{10<<20 - 1, "high", nil},
		{5 << 20, "critical", nil},
		{5<<20 - 1, "critical", ErrDiskFull},
		{5<<20 - 1, "high", ErrDiskFull},
		{0, "low", ErrDiskFull},
	} {
		free = step.free
		f := mk(step.sev)
		if err := q.Put(f); !errors.Is(err, step.wantErr) {
			t.Fatalf("put %s with %d bytes free: %v, want %v", step.sev, step.free, err, step.wantErr)
		}
		if step.wantErr == nil {
			kept = append(kept, f)
		}
	}
	got, err := q.Peek(100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(kept)) {
		t.Fatalf("pending %v, want %v", ids(got), ids(kept))
	}
	st := q.Stats()
	wantBySev := map[string]uint64{"low": 2, "medium": 1, "high": 1, "critical": 1}
	if st.Dropped != 5 || !maps.Equal(st.DroppedBySeverity, wantBySev) || st.Full != "disk" || st.FreeBytes != 0 || st.Pending != 4 {
		t.Fatalf("stats %+v, want 4 pending, 5 dropped %v, full for disk with 0 bytes free", st, wantBySev)
	}

	// Delivered findings can still be removed with the disk full.
	if err := q.Ack(ids(kept[:2])); err != nil {
		t.Fatalf("ack with the disk full: %v", err)
	}
	// Space returns: low findings are stored again and the status clears.
	free = 50 << 20
	if err := q.Put(mk("low")); err != nil {
		t.Fatalf("put low once space returned: %v", err)
	}
	if st := q.Stats(); st.Full != "" || st.FreeBytes != 50<<20 || st.Pending != 3 {
		t.Fatalf("stats once space returned %+v, want not full, 50 MiB free, 3 pending", st)
	}

	// Drained with the disk under the reserve, the queue drops its empty
	// prefixes to give the space back, and keeps working afterwards.
	free = 6 << 20
	rest, err := q.Peek(100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ids(rest)); err != nil {
		t.Fatalf("ack draining the queue with the disk under the reserve: %v", err)
	}
	high := mk("high")
	if err := q.Put(high); err != nil {
		t.Fatalf("put high after the queue was drained: %v", err)
	}
	if got, err := q.Peek(100, 0); err != nil || !slices.Equal(ids(got), ids([]*protocol.Finding{high})) {
		t.Fatalf("pending after the drain %v, %v; want only the new high finding", ids(got), err)
	}

	// An unreadable free space falls back to the count bound.
	freeErr = errors.New("statfs: input/output error")
	if err := q.Put(mk("low")); err != nil {
		t.Fatalf("put low with the free space unknown: %v", err)
	}
}

// The reserves must be ordered.
func TestDiskReserveOptions(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	if _, err := Open(db, Options{FreeSpace: func() (uint64, error) { return 0, nil }, Reserve: 1 << 20, HardReserve: 2 << 20}); err == nil {
		t.Fatal("reserve under the hard reserve accepted")
	}
	q := openQueue(t, db, Options{})
	if q.soft != DefaultReserve || q.hard != DefaultHardReserve || DefaultReserve <= DefaultHardReserve {
		t.Fatalf("reserves %d/%d, want %d/%d", q.soft, q.hard, DefaultReserve, DefaultHardReserve)
	}
}

// The real free space of a folder is read.
func TestDiskFree(t *testing.T) {
	free := DiskFree(t.TempDir())
	if free == nil {
		t.Skip("free space is not read on this system")
	}
	n, err := free()
	if err != nil || n == 0 {
		t.Fatalf("free space %d, %v; want > 0", n, err)
	}
	if _, err := DiskFree("/nonexistent/folder")(); err == nil {
		t.Fatal("free space of a missing folder read without error")
	}
}

// Room lets the command journal write down to the hard reserve and says
// how much is free when it may not.
func TestRoom(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	var free uint64 = 100 << 20
	var freeErr error
	q := openQueue(t, db, Options{
		FreeSpace:   func() (uint64, error) { return free, freeErr },
		Reserve:     10 << 20,
		HardReserve: 5 << 20,
	})
	for _, step := range []struct {
		free uint64
		err  error
		want bool
	}{
		{100 << 20, nil, true},
		{10<<20 - 1, nil, true}, // under the soft reserve: a journal entry is tiny
		{5 << 20, nil, true},
		{5<<20 - 1, nil, false},
		{0, nil, false},
		{0, errors.New("statfs failed"), true}, // no reading: as without a free-space function
	} {
		free, freeErr = step.free, step.err
		err := q.Room()
		if (err == nil) != step.want {
			t.Fatalf("Room with %d bytes free (read error %v): %v, want room %v", step.free, step.err, err, step.want)
		}
		if err != nil && (!errors.Is(err, ErrNoRoom) || !strings.Contains(err.Error(), "MiB free")) {
			t.Errorf("Room error %q does not wrap ErrNoRoom or say what is free", err)
		}
	}
	db2 := openDB(t, t.TempDir())
	defer db2.Close()
	if err := openQueue(t, db2, Options{}).Room(); err != nil {
		t.Errorf("Room without a free-space function: %v", err)
	}
}
