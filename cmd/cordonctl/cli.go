package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
)

// A command is one cordonctl command such as "agents" or "incident show".
type command struct {
	name       string   // as typed, words separated by one space
	synopsis   string   // what follows the name in the usage line
	summary    string   // one line for the overview
	positional []string // names of the required positional arguments
	// setup defines the command's flags on fs and returns the function
	// that runs it once fs has been parsed.
	setup func(fs *flag.FlagSet) func(*invocation) error
}

// commands lists every command in the order the overview shows them.
var commands = []*command{
	{name: "agents", synopsis: "[--json]", summary: "list enrolled agents", setup: setupAgents},
	{name: "findings", synopsis: "[--agent ID] [--incident ID] [--severity S] [--json]", summary: "list findings", setup: setupFindings},
	{name: "incidents", synopsis: "[--status S] [--agent ID] [--json]", summary: "list incidents", setup: setupIncidents},
	{name: "incident show", synopsis: "ID [--json]", summary: "show one incident with its findings and timeline", positional: []string{"ID"}, setup: setupIncidentShow},
	{name: "incident update", synopsis: "ID [--status S] [--assignee U] [--impact N] [--urgency N] [--comment TEXT] [--review-root-cause TEXT --review-lessons TEXT --review-followup ACTION...] [--json]", summary: "change an incident's status, assignee, impact or urgency, review it, or comment on it", positional: []string{"ID"}, setup: setupIncidentUpdate},
	{name: "incident comment", synopsis: "ID TEXT [--json]", summary: "add a comment to an incident's timeline", positional: []string{"ID", "TEXT"}, setup: setupIncidentComment},
	{name: "incident check", synopsis: "ID STEP [--undo] [--comment TEXT] [--json]", summary: "tick (or with --undo untick) a step of an incident's playbook checklist", positional: []string{"ID", "STEP"}, setup: setupIncidentCheck},
	{name: "incident approve", synopsis: "ID REF [--comment TEXT] [--json]", summary: "approve a playbook action awaiting approval (REF as incident show lists it), which sends its command", positional: []string{"ID", "REF"}, setup: setupIncidentApprove},
	{name: "incident report", synopsis: "ID", summary: "render an incident as a Markdown report", positional: []string{"ID"}, setup: setupIncidentReport},
	{name: "incident stats", synopsis: "[--json]", summary: "service-level figures: MTTD, MTTA, MTTC, MTTR and breaches", setup: setupIncidentStats},
	{name: "incident hunt", synopsis: "ID [--agents SELECTOR] [--since 24h] [--ttl 24h] [--budget 30s] [--max-matches N] [--wait] [--timeout 2m] [--json]", summary: "hunt the fleet for an incident's indicators and name the matching hosts not yet in it", positional: []string{"ID"}, setup: setupIncidentHunt},
	{name: "incident hunt-results", synopsis: "ID HUNT [--json]", summary: "show an incident's hunt, naming the matching hosts not yet in the incident", positional: []string{"ID", "HUNT"}, setup: setupIncidentHuntResults},
	{name: "incident add-host", synopsis: "ID AGENT [--reason TEXT] [--json]", summary: "add a host to an incident's affected hosts", positional: []string{"ID", "AGENT"}, setup: setupIncidentAddHost},
	{name: "hunt create", synopsis: "--query QUERY [--agents SELECTOR] [--since 24h] [--ttl 24h] [--budget 30s] [--max-matches N] [--wait] [--timeout 2m] [--json]", summary: "search the agents' event history and current state (docs/hunting.md)", setup: setupHuntCreate},
	{name: "hunt show", synopsis: "ID [--json]", summary: "show a hunt: agents answered, pending, failed, and the matches", positional: []string{"ID"}, setup: setupHuntShow},
	{name: "hunts", synopsis: "[--json]", summary: "list hunts", setup: setupHunts},
	{name: "isolate", synopsis: "AGENT --reason TEXT [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "cut a host off the network except for the collector", positional: []string{"AGENT"}, setup: setupIsolate},
	{name: "release", synopsis: "AGENT [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "lift the isolation of a host", positional: []string{"AGENT"}, setup: setupRelease},
	{name: "agent break-glass", synopsis: "AGENT [--json]", summary: "print the code that lifts an agent's isolation locally (admin; last line)", positional: []string{"AGENT"}, setup: setupAgentBreakGlass},
	{name: "kill", synopsis: "AGENT --pid N [--entity-id ID] [--tree] [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "kill a process (and with --tree its descendants) on a host", positional: []string{"AGENT"}, setup: setupKill},
	{name: "suspend", synopsis: "AGENT --pid N [--entity-id ID] [--tree] [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "stop a process (SIGSTOP) on a host", positional: []string{"AGENT"}, setup: setupSuspend},
	{name: "resume", synopsis: "AGENT --pid N [--entity-id ID] [--tree] [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "continue a suspended process (SIGCONT) on a host", positional: []string{"AGENT"}, setup: setupResume},
	{name: "quarantine", synopsis: "AGENT --path PATH [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "move a file into the agent's root-only quarantine", positional: []string{"AGENT"}, setup: setupQuarantine},
	{name: "restore", synopsis: "AGENT --path PATH | --id ID [--reason TEXT] [--incident ID] [--wait] [--timeout 2m] [--json]", summary: "put a quarantined file back as it was", positional: []string{"AGENT"}, setup: setupRestore},
	{name: "drill", synopsis: "AGENT [--scenario NAME] [--wait] [--timeout 2m] [--json]", summary: "run a harmless attack drill on a host", positional: []string{"AGENT"}, setup: setupDrill},
	{name: "commands", synopsis: "[--agent ID] [--status S] [--json]", summary: "list response commands and their results", setup: setupCommands},
	{name: "enroll-token create", synopsis: "[--ttl 24h] [--uses N] [--tag k=v]... [--json]", summary: "create an enrollment token (printed on the last line)", setup: setupEnrollTokenCreate},
	{name: "enroll-token list", synopsis: "[--json]", summary: "list enrollment tokens", setup: setupEnrollTokenList},
	{name: "api-key create", synopsis: "--name NAME --role viewer|responder|admin [--json]", summary: "create an API key (printed on the last line)", setup: setupAPIKeyCreate},
	{name: "api-key list", synopsis: "[--json]", summary: "list API keys", setup: setupAPIKeyList},
	{name: "exports status", synopsis: "[--json]", summary: "show the export sinks: queue, dead-letter queue, deliveries, last error", setup: setupExportsStatus},
	{name: "exports replay", synopsis: "SINK [--json]", summary: "send a sink's dead-letter queue again", positional: []string{"SINK"}, setup: setupExportsReplay},
	{name: "api-key revoke", synopsis: "ID [--json]", summary: "revoke an API key: it is refused from then on", positional: []string{"ID"}, setup: setupAPIKeyRevoke},
	{name: "audit", synopsis: "[--actor NAME] [--action A] [--target ID] [--outcome success|failure] [--json]", summary: "list the audit trail of changes made through the API", setup: setupAudit},
	{name: "audit verify", synopsis: "[--json]", summary: "check the audit trail's hash chain (exit 1 when it was tampered with)", setup: setupAuditVerify},
	{name: "rules", synopsis: "[--json]", summary: "show the rule set pushed to the fleet and how many agents run it", setup: setupRules},
	{name: "ioc", synopsis: "[--json]", summary: "show the indicator set pushed to the fleet and how many agents match it", setup: setupIoc},
	{name: "ioc push", synopsis: "FILE [--json]", summary: "push an indicator set (CSV type,value,severity,note or a STIX 2.1 bundle) to all agents; refused whole, with line or object, when any indicator is bad", positional: []string{"FILE"}, setup: setupIocPush},
	{name: "rules push", synopsis: "DIR [--json]", summary: "push every rule file (.yml, .yaml) under DIR to all agents; refused whole, with file and line, when any rule does not compile", positional: []string{"DIR"}, setup: setupRulesPush},
	{name: "ca-pin", synopsis: "[--json]", summary: "print the collector CA pin for cordon-agent enroll (last line)", setup: setupCAPin},
	{name: "version", synopsis: "", summary: "print the version of cordonctl", setup: setupVersion},
}

// lookup finds the command named by words (one word, or a group and a
// verb such as "incident show").
func lookup(words []string) (*command, error) {
	name := strings.Join(words, " ")
	for _, c := range commands {
		if c.name == name {
			return c, nil
		}
	}
	if len(words) == 1 && groupOf(words[0]) != nil {
		return nil, fmt.Errorf("%s: missing subcommand (%s)", words[0], strings.Join(groupOf(words[0]), ", "))
	}
	if len(words) == 2 && groupOf(words[0]) != nil {
		return nil, fmt.Errorf("%s: unknown subcommand %q (want %s)", words[0], words[1], strings.Join(groupOf(words[0]), ", "))
	}
	return nil, fmt.Errorf("unknown command %q", words[0])
}

// groupOf returns the verbs of a command group such as "incident", or nil
// when word is not a group.
func groupOf(word string) []string {
	var verbs []string
	for _, c := range commands {
		if g, verb, ok := strings.Cut(c.name, " "); ok && g == word {
			verbs = append(verbs, verb)
		}
	}
	sort.Strings(verbs)
	return verbs
}

// isCommand reports whether name is a command by itself, such as
// "audit", which is also the group of "audit verify".
func isCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// isVerb reports whether word is a verb of the group.
func isVerb(group, word string) bool {
	for _, v := range groupOf(group) {
		if v == word {
			return true
		}
	}
	return false
}

// globalValueFlags are the flags that may precede the command name and
// take a value.
var globalValueFlags = map[string]bool{"api": true, "token": true}

// splitCommand separates the command words (one, or two for a group) from
// the rest of args. Flags before the command words are kept in rest, in
// order, so the command's flag set parses them.
func splitCommand(args []string) (words, rest []string, err error) {
	i := 0
	want := 1
	for i < len(args) && len(words) < want {
		a := args[i]
		if a == "--" {
			i++
			if i < len(args) {
				words = append(words, args[i])
				i++
				if len(words) == 1 && groupOf(words[0]) != nil {
					want = 2
				}
			}
			continue
		}
		if name, hasValue, ok := flagName(a); ok {
			rest = append(rest, a)
			i++
			if globalValueFlags[name] && !hasValue {
				if i >= len(args) {
					return nil, nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				rest = append(rest, args[i])
				i++
			}
			continue
		}
		words = append(words, a)
		i++
		if len(words) == 1 && groupOf(a) != nil && (!isCommand(a) || i < len(args) && isVerb(a, args[i])) {
			want = 2
		}
	}
	return words, append(rest, args[i:]...), nil
}

// flagName reports whether arg is a flag ("-x", "--x", "--x=v") and
// returns its name and whether the value is attached.
func flagName(arg string) (name string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", false, false
	}
	name = strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if name == "" || name[0] == '-' || name[0] == '=' {
		return "", false, false
	}
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue, true
}

func hasFlag(args []string, want string) bool {
	for _, a := range args {
		if name, _, ok := flagName(a); ok && name == want {
			return true
		}
	}
	return false
}

func hasHelpFlag(args []string) bool {
	return hasFlag(args, "h") || hasFlag(args, "help")
}

// An invocation is one run of a command: its parsed arguments and the
// app it runs in.
type invocation struct {
	*app
	ctx     context.Context
	cmd     *command
	args    []string // positional arguments
	globals *globals
	flags   *flag.FlagSet
}

// client returns an API client for the address and key given by the
// flags or, failing them, the environment.
func (inv *invocation) client() (*client, error) {
	api := inv.globals.api
	if api == "" {
		api = inv.env("CORDON_API")
	}
	if api == "" {
		api = defaultAPI
	}
	token := inv.globals.token
	if token == "" {
		token = inv.env("CORDON_TOKEN")
	}
	c, err := newClient(api, strings.TrimSpace(token), inv.http)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if c.token != "" && c.plaintextRemote() {
		fmt.Fprintf(inv.stderr, "cordonctl: warning: sending the API key without TLS to %s\n", c.base)
	}
	return c, nil
}

// isSet reports whether the flag name was given on the command line.
func (inv *invocation) isSet(name string) bool {
	set := false
	inv.flags.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// A usageError is a mistake in the command line; it exits with code 2
// and prints the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}
