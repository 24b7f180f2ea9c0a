package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/actions/isolation"
	"github.com/cordon-edr/cordon/agent"
)

// checkIsolation validates the isolation section of the configuration.
func checkIsolation(path string, root *yaml.Node, c *config) error {
	_, err := isolationConfig(c)
	if err == nil {
		return nil
	}
	if ie, ok := err.(indexedError); ok {
		line := findLine(root, "isolation", ie.key)
		if n := findNode(root, "isolation", ie.key); n != nil && n.Kind == yaml.SequenceNode && ie.index < len(n.Content) {
			line = n.Content[ie.index].Line
		}
		return fmt.Errorf("%s: line %d: isolation.%s: %v", path, line, ie.key, ie.err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

type indexedError struct {
	key   string
	index int
	err   error
}

func (e indexedError) Error() string { return fmt.Sprintf("isolation.%s: %v", e.key, e.err) }

// isolationConfig turns the isolation section into the agent's terms.
func isolationConfig(c *config) (agent.IsolationConfig, error) {
	out := agent.IsolationConfig{AllowDNS: c.Isolation.AllowDNS, AllowDHCP: c.Isolation.AllowDHCP, Probe: c.Isolation.Probe}
	for i, s := range c.Isolation.AllowCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return out, indexedError{"allow_cidrs", i, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)}
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.AllowCIDRs = append(out.AllowCIDRs, p)
	}
	if out.Probe != "" {
		host, port, err := net.SplitHostPort(out.Probe)
		if err == nil {
			_, err = netip.ParseAddr(host)
		}
		if n, perr := strconv.Atoi(port); err == nil && (perr != nil || n <= 0 || n > 65535) {
			err = fmt.Errorf("bad port %q", port)
		}
		if err != nil {
			return out, indexedError{key: "probe", index: -1, err: fmt.Errorf("%q: want IP:PORT: %v", out.Probe, err)}
		}
	}
	return out, nil
}

// findNode returns the node at path in a document, or nil.
func findNode(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func cmdRelease(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("release", stderr)
	state := fs.String("state", defaultState, "state `DIR`")
	code := fs.String("break-glass", "", "the agent's break-glass `CODE`, which admins read on the collector (cordonctl agent break-glass ID)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *code == "" {
		return usageError{fmt.Errorf("release: --break-glass CODE is required (lifting isolation from the collector needs no code: cordonctl release AGENT)")}
	}
	res, err := isolation.New(*state, nil).BreakGlass(*code)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	fmt.Fprintln(stdout, res)
	return nil
}
