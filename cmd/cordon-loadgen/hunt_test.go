package main

import (
	"context"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol"
)

func TestAnswerHunt(t *testing.T) {
	f := &fleet{cfg: Config{History: 300}}
	since := time.Now().Add(-24 * time.Hour).UnixNano()
	for _, tc := range []struct {
		idx     int
		query   string
		status  string
		matches int
		scanned uint64
	}{
		{0, defaultHuntQuery, "answered", 1, 300},
		{10, defaultHuntQuery, "answered", 1, 300},
		{1, defaultHuntQuery, "answered", 0, 300},
		{3, emptyHuntQuery, "answered", 0, 300},
		{3, `destination.ip in 198.51.100.0/24`, "answered", 100, 300},
		{3, `destination.ip in 198.51.100.0/24`, "partial", 5, 0}, // max_matches 5
		{3, `proces.name == "x"`, "failed", 0, 0},
	} {
		a := &simAgent{f: f, idx: tc.idx}
		req := &protocol.HuntRequest{Id: "h", Query: tc.query, SinceUnixNano: since}
		if tc.status == "partial" {
			req.MaxMatches = 5
		}
		res := a.answerHunt(context.Background(), req)
		if res.GetStatus() != tc.status || len(res.GetMatches()) != tc.matches || (tc.scanned > 0 && res.GetScanned() != tc.scanned) {
			t.Errorf("agent %d, %q: %s (%s), %d matches, %d scanned; want %s, %d matches",
				tc.idx, tc.query, res.GetStatus(), res.GetReason(), len(res.GetMatches()), res.GetScanned(), tc.status, tc.matches)
		}
	}
	// Nothing before since is read.
	a := &simAgent{f: f, idx: 0}
	res := a.answerHunt(context.Background(), &protocol.HuntRequest{Id: "h", Query: defaultHuntQuery, SinceUnixNano: time.Now().UnixNano()})
	if res.GetScanned() != 0 || len(res.GetMatches()) != 0 {
		t.Errorf("a hunt from now on read %d events", res.GetScanned())
	}
}
