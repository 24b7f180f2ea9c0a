package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	now := testNow
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now, "just now"},
		{now.Add(-500 * time.Millisecond), "just now"},
		{now.Add(-12 * time.Second), "12s ago"},
		{now.Add(-59 * time.Second), "59s ago"},
		{now.Add(-5*time.Minute - 30*time.Second), "5m ago"},
		{now.Add(-3 * time.Hour), "3h ago"},
		{now.Add(-47 * time.Hour), "47h ago"},
		{now.Add(-72 * time.Hour), "3d ago"},
		{now.Add(20 * time.Second), "just now"},
		{now.Add(10 * time.Minute), "in 10m"},
	}
	for _, tt := range tests {
		if got := ago(tt.t, now); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"ünïcode ✓", "ünïcode ✓"},
		{"\x1b[2Jboom", `\u001b[2Jboom`},
		{"a\tb\nc\rd", "a b c d"},
		{"bad\xffbyte", `bad\xffbyte`},
		{"\u009bcsi", `\u009bcsi`},
		{"\uFFFD kept", "\uFFFD kept"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTableTrimsAndAligns(t *testing.T) {
	var b strings.Builder
	tb := newTable(&b, "A", "LONGER", "C")
	tb.row("xyz", "1", "")
	tb.row("q", "22", "z")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	want := "A    LONGER  C\nxyz  1\nq    22      z\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{30 * time.Minute, "30m"},
		{45 * time.Second, "45s"},
		{time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := time.ParseDuration(formatDuration(tt.d)); err != nil || back != tt.d {
			t.Errorf("formatDuration(%v) does not parse back: %v %v", tt.d, back, err)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo world", 5); got != "héll…" {
		t.Errorf("got %q", got)
	}
	if got := truncate("short", 5); got != "short" {
		t.Errorf("got %q", got)
	}
}

func TestLooseAndAPITime(t *testing.T) {
	var v struct {
		A, B, C, D loose
		T1, T2, T3 apiTime
	}
	in := `{"A":"text","B":{"x": 1},"C":null,"D":42,"T1":"2025-06-01T12:00:00.5Z","T2":"","T3":null}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != "text" || v.B != `{"x":1}` || v.C != "" || v.D != "42" {
		t.Errorf("loose: %+v", v)
	}
	if !v.T1.Equal(testNow.Add(500*time.Millisecond)) || !v.T2.IsZero() || !v.T3.IsZero() {
		t.Errorf("apiTime: %v %v %v", v.T1, v.T2, v.T3)
	}
	if err := json.Unmarshal([]byte(`{"T1": 5}`), &v); err == nil {
		t.Error("apiTime accepted a number")
	}
}

func TestCheckPin(t *testing.T) {
	good := fakePin()
	cert := "-----BEGIN CERTIFICATE-----\nbm90IHJlYWxseSBERVIsIGJ1dCBoYXNoZWQgdGhlIHNhbWUgd2F5\n-----END CERTIFICATE-----\n"
	tests := []struct {
		pin, cert string
		err       string
	}{
		{pin: good, cert: cert},
		{pin: strings.ToUpper(good[:7]) + good[7:], cert: ""},
		{pin: good, cert: "garbage", err: "not PEM"},
		{pin: "sha256:" + strings.Repeat("0", 64), cert: cert, err: "does not match"},
		{pin: "md5:abcd", err: "malformed"},
		{pin: "sha256:xyz", err: "malformed"},
		{pin: "", err: "malformed"},
	}
	for _, tt := range tests {
		got, err := checkPin(tt.pin, tt.cert)
		switch {
		case tt.err == "" && (err != nil || got != good):
			t.Errorf("checkPin(%q) = %q, %v", tt.pin, got, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("checkPin(%q): error %v, want %q", tt.pin, err, tt.err)
		}
	}
}
