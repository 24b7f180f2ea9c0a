package isolation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftFirewall installs the rules as an nftables table over netlink; no
// nft binary is needed.
type nftFirewall struct{}

func newFirewall() firewall { return nftFirewall{} }

var chainHooks = []struct {
	name string
	hook *nftables.ChainHook
}{
	{ChainInput, nftables.ChainHookInput},
	{ChainOutput, nftables.ChainHookOutput},
	{ChainForward, nftables.ChainHookForward},
}

func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// Apply replaces Cordon's table with one holding rules, in one netlink
// transaction: the kernel applies all of it or none of it.
func (nftFirewall) Apply(rules []Rule) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening netlink to nftables: %w", err)
	}
	t := table()
	// Adding then deleting makes the deletion succeed whether or not an
	// older table exists, all in the same transaction.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	drop := nftables.ChainPolicyDrop
	chains := map[string]*nftables.Chain{}
	for _, h := range chainHooks {
		chains[h.name] = c.AddChain(&nftables.Chain{
			Name: h.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: h.hook, Priority: nftables.ChainPriorityFilter, Policy: &drop,
		})
	}
	for _, r := range rules {
		ch, ok := chains[r.Chain]
		if !ok {
			return fmt.Errorf("isolation rule %q: unknown chain %q", r.Comment, r.Chain)
		}
		exprs, err := ruleExprs(r)
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs, UserData: []byte(r.Comment)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// Remove deletes Cordon's table; a missing table is not an error.
func (nftFirewall) Remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening netlink to nftables: %w", err)
	}
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("deleting nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// Check reads the table back from the kernel and compares it with rules.
func (nftFirewall) Check(rules []Rule) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening netlink to nftables: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("listing nftables chains: %w", err)
	}
	want := map[string]int{}
	for _, r := range rules {
		want[r.Chain]++
	}
	found := 0
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		found++
		if ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			return fmt.Errorf("nftables chain inet %s %s: policy is not drop", TableName, ch.Name)
		}
		got, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return fmt.Errorf("listing rules of inet %s %s: %w", TableName, ch.Name, err)
		}
		if len(got) != want[ch.Name] {
			return fmt.Errorf("nftables chain inet %s %s holds %d rules, want %d", TableName, ch.Name, len(got), want[ch.Name])
		}
	}
	if found != len(chainHooks) {
		return fmt.Errorf("nftables table inet %s has %d of its %d chains", TableName, found, len(chainHooks))
	}
	return nil
}

// Present reports whether Cordon's table exists.
func (nftFirewall) Present() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("opening netlink to nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("listing nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			return true, nil
		}
	}
	return false, nil
}

// ruleExprs compiles one rule to nftables expressions ending in accept.
func ruleExprs(r Rule) ([]expr.Any, error) {
	input := r.Chain == ChainInput
	var out []expr.Any
	cmp := func(data []byte) {
		out = append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	}
	if r.Iface != "" {
		key := expr.MetaKeyOIFNAME
		if input {
			key = expr.MetaKeyIIFNAME
		}
		out = append(out, &expr.Meta{Key: key, Register: 1})
		cmp(ifname(r.Iface))
	}
	if r.Remote.IsValid() {
		a := r.Remote.Addr()
		fam, off := byte(unix.NFPROTO_IPV4), uint32(16) // daddr
		if input {
			off = 12 // saddr
		}
		if a.Is6() {
			fam, off = unix.NFPROTO_IPV6, 24
			if input {
				off = 8
			}
		}
		out = append(out, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1})
		cmp([]byte{fam})
		n := uint32(a.BitLen() / 8)
		out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
		if r.Remote.Bits() < a.BitLen() {
			out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: prefixMask(r.Remote), Xor: make([]byte, n)})
		}
		cmp(r.Remote.Masked().Addr().AsSlice())
	}
	if r.Proto != 0 {
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1})
		cmp([]byte{r.Proto})
	}
	if r.RemotePort != 0 || r.LocalPort != 0 {
		if r.Proto != ProtoTCP && r.Proto != ProtoUDP {
			return nil, fmt.Errorf("isolation rule %q: ports need tcp or udp", r.Comment)
		}
		// Source port at offset 0, destination port at 2.
		remoteOff, localOff := uint32(2), uint32(0)
		if input {
			remoteOff, localOff = 0, 2
		}
		for _, p := range []struct {
			port uint16
			off  uint32
		}{{r.RemotePort, remoteOff}, {r.LocalPort, localOff}} {
			if p.port == 0 {
				continue
			}
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: p.off, Len: 2})
			cmp(binary.BigEndian.AppendUint16(nil, p.port))
		}
	}
	if r.ICMPTypes != [2]uint8{} {
		if r.Proto != ProtoICMPv6 {
			return nil, fmt.Errorf("isolation rule %q: icmp types need icmpv6", r.Comment)
		}
		out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
		out = append(out, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{r.ICMPTypes[0]}, ToData: []byte{r.ICMPTypes[1]}})
	}
	out = append(out, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept})
	return out, nil
}

// ifname pads an interface name the way the kernel stores it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func prefixMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
