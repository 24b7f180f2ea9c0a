package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsRefuseBadInput(t *testing.T) {
	base := []string{"--collector", "127.0.0.1:7443", "--api", "http://127.0.0.1:7480", "--token", "k"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", "http://127.0.0.1:7480", "--token", "k"}, "--collector is required"},
		{[]string{"--collector", "127.0.0.1:7443", "--api", "http://127.0.0.1:7480"}, "--token"},
		{append(base, "--collector", "192.0.2.1:7443"), "not loopback"},
		{append(base, "--api", "http://192.0.2.1:7480"), "--api"},
		{append(base, "--agents", "0"), "--agents"},
		{append(base, "--duration", "0s"), "--duration"},
		{append(base, "--rate", "-1"), "--rate"},
		{append(base, "--heartbeat", "1ms"), "--heartbeat"},
		{append(base, "--ramp", "-1s"), "--ramp"},
		{append(base, "extra"), "unexpected argument"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseFlags(base, io.Discard); err != nil {
		t.Errorf("good flags refused: %v", err)
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentilesOf(d)
	if p.Count != 100 || p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Errorf("percentiles %+v", p)
	}
	if p := percentilesOf(nil); p != (Percentiles{}) {
		t.Errorf("no samples: %+v", p)
	}
}
