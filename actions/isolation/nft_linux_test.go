package isolation

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/nftables/expr"
)

// The nftables expressions are built without a kernel; the namespace
// end-to-end test proves the kernel accepts and enforces them.
func TestRuleExprs(t *testing.T) {
	accept := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}
	tests := []struct {
		name string
		rule Rule
		want []expr.Any
	}{
		{
			name: "loopback in",
			rule: Rule{Chain: ChainInput, Iface: "lo"},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("lo\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			}, accept...),
		},
		{
			name: "collector out",
			rule: Rule{Chain: ChainOutput, Proto: ProtoUDP, Remote: netip.MustParsePrefix("10.1.2.3/32"), RemotePort: 7443},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 1, 2, 3}},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x1d, 0x13}},
			}, accept...),
		},
		{
			name: "collector in: source address and port",
			rule: Rule{Chain: ChainInput, Proto: ProtoUDP, Remote: netip.MustParsePrefix("fd00::1/128"), RemotePort: 7443},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: netip.MustParseAddr("fd00::1").AsSlice()},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x1d, 0x13}},
			}, accept...),
		},
		{
			name: "network allowance masks the address",
			rule: Rule{Chain: ChainInput, Remote: netip.MustParsePrefix("192.168.0.0/20")},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 240, 0}, Xor: []byte{0, 0, 0, 0}},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{192, 168, 0, 0}},
			}, accept...),
		},
		{
			name: "dhcp out: both ports",
			rule: Rule{Chain: ChainOutput, Proto: ProtoUDP, RemotePort: 67, LocalPort: 68},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 67}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 68}},
			}, accept...),
		},
		{
			name: "neighbour discovery",
			rule: Rule{Chain: ChainOutput, Proto: ProtoICMPv6, ICMPTypes: [2]uint8{133, 137}},
			want: append([]expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{58}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{137}},
			}, accept...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ruleExprs(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ruleExprs:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
	for _, bad := range []Rule{
		{Chain: ChainInput, RemotePort: 53},
		{Chain: ChainInput, Proto: ProtoUDP, ICMPTypes: [2]uint8{1, 2}},
	} {
		if _, err := ruleExprs(bad); err == nil {
			t.Errorf("ruleExprs(%+v): no error", bad)
		}
	}
}

// Every rule of every policy compiles.
func TestRulesCompile(t *testing.T) {
	p := Policy{
		Collector: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7443"), netip.MustParseAddrPort("[fd00::1]:7443")},
		DNS:       true, DHCP: true,
		CIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("fd01::/64")},
	}
	for _, r := range Rules(p) {
		if _, err := ruleExprs(r); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
