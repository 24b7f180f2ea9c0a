package ioc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// benchSet is a full-size set: 20,000 indicators, 1,000 of them CIDRs.
func benchSet(b *testing.B, n, cidrs int) *Matcher {
	b.Helper()
	var inds []Indicator
	for i := range n - cidrs {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		switch i % 4 {
		case 0, 1:
			inds = append(inds, Indicator{Type: TypeSHA256, Value: hex.EncodeToString(sum[:])})
		case 2:
			inds = append(inds, Indicator{Type: TypeIP, Value: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)})
		case 3:
			inds = append(inds, Indicator{Type: TypePath, Value: fmt.Sprintf("/opt/bad/%d", i)})
		}
	}
	for i := range cidrs {
		inds = append(inds, Indicator{Type: TypeCIDR, Value: fmt.Sprintf("100.%d.%d.0/24", i>>8&255, i&255)})
	}
	m, err := NewMatcher("bench", inds)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchEvents() []ecs.Event {
	return []ecs.Event{
		{File: &ecs.File{Path: "/srv/www/upload/a.php", Name: "a.php", Hash: &ecs.Hash{SHA256: "0b3f0c7e7f1e5d1f7c1c7d2a0c7a3a6e0f4e1b2c3d4e5f60718293a4b5c6d7e8"}},
			Process: &ecs.Process{PID: 4121, Executable: "/usr/sbin/php-fpm", Name: "php-fpm"}},
		{Destination: &ecs.Endpoint{IP: "198.51.100.23", Port: 443}, Source: &ecs.Endpoint{IP: "192.0.2.10", Port: 51514},
			Process: &ecs.Process{PID: 4122, Executable: "/usr/bin/curl", Name: "curl"}},
		{Process: &ecs.Process{PID: 4123, Executable: "/usr/bin/bash", Name: "bash"}},
	}
}

// BenchmarkMatch is the cost per event of matching a set that matches
// nothing (the common case): file, connection and process events in turn.
func BenchmarkMatch(b *testing.B) {
	for _, tc := range []struct {
		name     string
		n, cidrs int
	}{{"empty", 0, 0}, {"20000-no-cidrs", 20000, 0}, {"20000-with-1000-cidrs", 20000, 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			m := benchSet(b, tc.n, tc.cidrs)
			evs := benchEvents()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if m.Match(&evs[i%len(evs)]) != nil {
					b.Fatal("matched")
				}
			}
		})
	}
}
