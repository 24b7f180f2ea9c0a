package isolation

import (
	"net/netip"
	"slices"
	"testing"
)

func TestRules(t *testing.T) {
	collector := netip.MustParseAddrPort("10.0.0.1:7443")
	base := func(chain string) []Rule {
		return []Rule{
			{Chain: chain, Iface: "lo", Comment: "loopback"},
			{Chain: chain, Proto: ProtoICMPv6, ICMPTypes: [2]uint8{133, 137}, Comment: "ipv6 neighbour discovery"},
			{Chain: chain, Proto: ProtoUDP, Remote: netip.MustParsePrefix("10.0.0.1/32"), RemotePort: 7443, Comment: "collector 10.0.0.1:7443"},
		}
	}
	tests := []struct {
		name   string
		policy Policy
		want   []Rule
	}{
		{
			name:   "collector only",
			policy: Policy{Collector: []netip.AddrPort{collector}},
			want:   append(base(ChainInput), base(ChainOutput)...),
		},
		{
			name: "mapped and repeated collector addresses once",
			policy: Policy{Collector: []netip.AddrPort{
				netip.MustParseAddrPort("[::ffff:10.0.0.1]:7443"), collector,
			}},
			want: append(base(ChainInput), base(ChainOutput)...),
		},
		{
			name:   "ipv6 collector",
			policy: Policy{Collector: []netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:7443")}},
			want: []Rule{
				{Chain: ChainInput, Iface: "lo", Comment: "loopback"},
				{Chain: ChainInput, Proto: ProtoICMPv6, ICMPTypes: [2]uint8{133, 137}, Comment: "ipv6 neighbour discovery"},
				{Chain: ChainInput, Proto: ProtoUDP, Remote: netip.MustParsePrefix("fd00::1/128"), RemotePort: 7443, Comment: "collector [fd00::1]:7443"},
				{Chain: ChainOutput, Iface: "lo", Comment: "loopback"},
				{Chain: ChainOutput, Proto: ProtoICMPv6, ICMPTypes: [2]uint8{133, 137}, Comment: "ipv6 neighbour discovery"},
				{Chain: ChainOutput, Proto: ProtoUDP, Remote: netip.MustParsePrefix("fd00::1/128"), RemotePort: 7443, Comment: "collector [fd00::1]:7443"},
			},
		},
		{
			name: "every allowance",
			policy: Policy{
				Collector: []netip.AddrPort{collector}, DNS: true, DHCP: true,
				CIDRs: []netip.Prefix{netip.MustParsePrefix("192.168.7.9/24")},
			},
			want: func() []Rule {
				var out []Rule
				for _, ch := range []string{ChainInput, ChainOutput} {
					out = append(out, base(ch)...)
					out = append(out,
						Rule{Chain: ch, Proto: ProtoUDP, RemotePort: 53, Comment: "dns"},
						Rule{Chain: ch, Proto: ProtoTCP, RemotePort: 53, Comment: "dns"},
						Rule{Chain: ch, Proto: ProtoUDP, RemotePort: 67, LocalPort: 68, Comment: "dhcp"},
						Rule{Chain: ch, Proto: ProtoUDP, RemotePort: 547, LocalPort: 546, Comment: "dhcpv6"},
						Rule{Chain: ch, Remote: netip.MustParsePrefix("192.168.7.0/24"), Comment: "allowed 192.168.7.0/24"},
					)
				}
				return out
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Rules(tt.policy)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Rules:\n got %+v\nwant %+v", got, tt.want)
			}
			for _, r := range got {
				if r.Chain == ChainForward {
					t.Errorf("forward chain accepts %+v; it must accept nothing", r)
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{"ok", Policy{Collector: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7443")}}, false},
		{"no collector", Policy{DNS: true}, true},
		{"no port", Policy{Collector: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 0)}}, true},
		{"invalid cidr", Policy{Collector: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1")}, CIDRs: []netip.Prefix{{}}}, true},
	}
	for _, tt := range tests {
		if err := tt.policy.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
