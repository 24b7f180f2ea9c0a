package config

import (
	"strings"
	"testing"
	"time"
)

func TestConfigHistory(t *testing.T) {
	tests := []struct {
		yaml     string
		age      time.Duration
		bytes    int64
		disabled bool
		err      string
	}{
		{"log_level: info\n", 72 * time.Hour, 512 << 20, false, ""},
		{"history:\n  max_age: 24h\n  max_bytes: 64MiB\n", 24 * time.Hour, 64 << 20, false, ""},
		{"history:\n  max_bytes: 2000000\n", 72 * time.Hour, 2000000, false, ""},
		{"history:\n  enabled: false\n", 72 * time.Hour, 512 << 20, true, ""},
		{"history:\n  max_bytes: lots\n", 0, 0, false, "line 2"},
		{"history:\n  max_bytes: 10KiB\n", 0, 0, false, "line 2: history.max_bytes: 10240 is below 1MiB"},
		{"history:\n  max_age: 0s\n", 0, 0, false, "line 2: history.max_age"},
		{"history:\n  size: 1\n", 0, 0, false, "size"},
	}
	for _, tt := range tests {
		c, err := Parse("agent.yml", []byte(tt.yaml))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil || c.History.MaxAge != tt.age || int64(c.History.MaxBytes) != tt.bytes || c.History.Enabled == tt.disabled {
			t.Errorf("%q: %+v, %v", tt.yaml, c.History, err)
		}
	}
}
