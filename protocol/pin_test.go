package protocol

import (
	"strings"
	"testing"
)

func TestParsePin(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"sha256:" + hex, "sha256:" + hex, true},
		{"  SHA256:" + strings.ToUpper(hex) + "\n", "sha256:" + hex, true},
		{hex, "", false},
		{"sha256:" + hex[:62], "", false},
		{"sha256:" + strings.Repeat("zz", 32), "", false},
		{"md5:" + hex, "", false},
	}
	for _, tt := range tests {
		got, err := ParsePin(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePin(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
