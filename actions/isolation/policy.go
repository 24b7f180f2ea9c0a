// Package isolation cuts a host off the network except for its collector:
// one firewall table of Cordon's own, with a drop policy in and out, and
// exceptions only for loopback, the collector's addresses and UDP port,
// and the allowances the agent's configuration names (DNS, DHCP, CIDRs).
//
// The rule set is a pure function of a Policy (Rules), tested without a
// kernel; the operating system layer (nftables over netlink on Linux)
// only installs, checks and deletes it. Releasing deletes Cordon's table
// and nothing else, so isolation never touches rules it did not add.
package isolation

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Policy says what an isolated host may still talk to.
type Policy struct {
	// Collector lists the collector's addresses with its UDP port. They
	// are resolved before the host is isolated, so re-applying the
	// isolation at start needs no DNS.
	Collector []netip.AddrPort `json:"collector"`
	// DNS allows queries to any server on port 53 (UDP and TCP).
	DNS bool `json:"dns,omitempty"`
	// DHCP allows DHCP (v4) and DHCPv6 leases to be renewed.
	DHCP bool `json:"dhcp,omitempty"`
	// CIDRs are networks the host may still reach and be reached from,
	// on any protocol (e.g. a management network).
	CIDRs []netip.Prefix `json:"cidrs,omitempty"`
}

// Validate reports what makes p unusable: without a collector address
// the host would be cut off from the only place a release can come from.
func (p Policy) Validate() error {
	if len(p.Collector) == 0 {
		return errors.New("isolation policy: no collector address; isolating would cut the agent off its collector")
	}
	for _, a := range p.Collector {
		if !a.IsValid() || a.Port() == 0 {
			return fmt.Errorf("isolation policy: collector address %q: want an IP address and a port", a)
		}
	}
	for _, c := range p.CIDRs {
		if !c.IsValid() {
			return fmt.Errorf("isolation policy: allowance %q is not a CIDR", c)
		}
	}
	return nil
}

// Chain names, which are also the hooks they are attached to.
const (
	ChainInput   = "input"
	ChainOutput  = "output"
	ChainForward = "forward"
)

// TableName is the name of Cordon's table (family inet, so one table
// covers IPv4 and IPv6).
const TableName = "cordon"

// IP protocol numbers the rules match.
const (
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Rule is one accept rule of the isolation table, in terms that do not
// depend on the firewall that installs it. A zero field matches
// anything. In the input chain the remote side is the packet's source,
// in the output chain its destination.
type Rule struct {
	Chain string
	// Iface is the interface the packet arrives on (input) or leaves by
	// (output).
	Iface string
	// Proto is the IP protocol number (ProtoTCP, ProtoUDP, ProtoICMPv6).
	Proto uint8
	// Remote is the address or network of the other end.
	Remote netip.Prefix
	// RemotePort and LocalPort are the TCP or UDP ports of either end.
	RemotePort, LocalPort uint16
	// ICMPTypes, when set, is the inclusive range of ICMPv6 types.
	ICMPTypes [2]uint8
	// Comment says why the rule exists; it is stored with the rule.
	Comment string
}

// Rules returns the accept rules of the isolation table for p. Every
// chain drops what these rules do not accept. The forward chain accepts
// nothing: a host that routes (containers, VMs) is isolated with them.
//
// There is deliberately no "established, related" rule: connections an
// attacker opened before the isolation must be cut as well. Every
// exception is therefore stateless and written for both directions.
func Rules(p Policy) []Rule {
	var out []Rule
	for _, chain := range []string{ChainInput, ChainOutput} {
		add := func(r Rule) {
			r.Chain = chain
			out = append(out, r)
		}
		add(Rule{Iface: "lo", Comment: "loopback"})
		// Neighbour discovery: without it no IPv6 packet reaches the
		// collector, and there is no ARP in an inet table to worry about.
		add(Rule{Proto: ProtoICMPv6, ICMPTypes: [2]uint8{133, 137}, Comment: "ipv6 neighbour discovery"})
		for _, c := range dedupe(p.Collector) {
			add(Rule{Proto: ProtoUDP, Remote: netip.PrefixFrom(c.Addr().Unmap(), c.Addr().Unmap().BitLen()), RemotePort: c.Port(), Comment: "collector " + c.String()})
		}
		if p.DNS {
			add(Rule{Proto: ProtoUDP, RemotePort: 53, Comment: "dns"})
			add(Rule{Proto: ProtoTCP, RemotePort: 53, Comment: "dns"})
		}
		if p.DHCP {
			add(Rule{Proto: ProtoUDP, RemotePort: 67, LocalPort: 68, Comment: "dhcp"})
			add(Rule{Proto: ProtoUDP, RemotePort: 547, LocalPort: 546, Comment: "dhcpv6"})
		}
		for _, c := range p.CIDRs {
			add(Rule{Remote: c.Masked(), Comment: "allowed " + c.Masked().String()})
		}
	}
	return out
}

func dedupe(as []netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(as))
	for _, a := range as {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
