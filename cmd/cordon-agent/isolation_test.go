package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestIsolationConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    []netip.Prefix
		wantErr string
	}{
		{name: "empty", yaml: ""},
		{
			name: "allowances",
			yaml: "isolation:\n  allow_dns: true\n  allow_dhcp: true\n  allow_cidrs: [10.0.0.0/8, 192.168.1.7]\n  probe: 192.0.2.1:9\n",
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")},
		},
		{
			name:    "bad cidr names its line",
			yaml:    "isolation:\n  allow_cidrs:\n    - 10.0.0.0/8\n    - tenth-network\n",
			wantErr: "line 4: isolation.allow_cidrs: \"tenth-network\" is not a CIDR",
		},
		{
			name:    "bad probe",
			yaml:    "isolation:\n  probe: somewhere\n",
			wantErr: "line 2: isolation.probe",
		},
		{
			name:    "unknown key",
			yaml:    "isolation:\n  allow_everything: true\n",
			wantErr: "allow_everything",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := defaultConfig()
			err := loadConfig(path, &c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			iso, err := isolationConfig(&c)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(iso.AllowCIDRs, tt.want) {
				t.Errorf("cidrs %v, want %v", iso.AllowCIDRs, tt.want)
			}
		})
	}
}
