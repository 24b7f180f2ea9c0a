package main

import (
	"testing"

	"github.com/cordon-edr/cordon/agent/localapi"
)

func TestSpoolLine(t *testing.T) {
	for _, tc := range []struct {
		sp   localapi.Spool
		want string
	}{
		{localapi.Spool{Pending: 3}, "3 pending, 0 dropped"},
		{
			localapi.Spool{Pending: 10, Dropped: 7, DroppedBySeverity: map[string]uint64{"medium": 2, "low": 5}, Full: "disk", FreeBytes: 8 << 20},
			"10 pending, 7 dropped (since start: low 5, medium 2); FULL: disk (8.0MiB free), low and medium findings dropped",
		},
		{
			localapi.Spool{Pending: 10, Dropped: 9, DroppedBySeverity: map[string]uint64{"high": 1, "low": 8}, Full: "disk", FreeBytes: 2 << 20},
			"10 pending, 9 dropped (since start: low 8, high 1); FULL: disk (2.0MiB free), every finding dropped",
		},
		{localapi.Spool{Pending: 100000, Dropped: 1, Full: "count"}, "100000 pending, 1 dropped; FULL: count bound reached, less severe findings evicted"},
		{
			localapi.Spool{Pending: 2, Full: "disk", FreeBytes: 3 << 20, Compactions: 4, CompactionWaiting: true},
			"2 pending, 0 dropped; FULL: disk (3.0MiB free), every finding dropped; compaction waiting for disk space",
		},
	} {
		if got := spoolLine(tc.sp); got != tc.want {
			t.Errorf("spoolLine(%+v)\n got %q\nwant %q", tc.sp, got, tc.want)
		}
	}
}
