package detectors

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Stable ids of the built-in rules.
const (
	RuleIDExecFromTempDir = "0746f174-f4eb-4be4-89de-6584d275b502"
	RuleIDShellToSocket   = "f0f795ed-4981-4274-a34f-c34c7597142e"
	RuleIDDownloadToShell = "3f049b5b-764f-45df-8ebc-bb5325389b51"
)

// ATT&CK v19 ids used by the built-in rules.
const (
	tacticExecution      = "TA0002"
	tacticStealth        = "TA0005" // was Defense Evasion before v19
	tacticCommandControl = "TA0011"

	techFilelessStorage = "T1027.011"
	techMasquerading    = "T1036"
	techUnixShell       = "T1059.004"
	techNonAppProtocol  = "T1095"
	techIngressTransfer = "T1105"
)

const (
	builtinRuleAuthor  = "Cordon"
	builtinRuleLicense = "DRL-1.1"
	builtinRuleVersion = "1"
	// sigmaRules is where the SigmaHQ rules the built-in rules follow live.
	sigmaRules = "https://github.com/SigmaHQ/sigma/blob/master/rules/linux/"
	// maxSummaryCommandLen bounds the command line quoted in a summary.
	maxSummaryCommandLen = 200
)

// Builtin returns new instances of the built-in detectors.
func Builtin() []Detector {
	return []Detector{execFromTempDir{}, shellToSocket{}, downloadToShell{}}
}

// processStart returns the process of a process start event.
func processStart(ev *ecs.Event) (*ecs.Process, bool) {
	if ev.Event.Category != ecs.CategoryProcess || ev.Event.Type != ecs.TypeStart || ev.Process == nil {
		return nil, false
	}
	return ev.Process, true
}

// execFromTempDir flags a binary executed from a world-writable temporary
// directory.
type execFromTempDir struct{}

var tempDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

func (execFromTempDir) Rule() Rule {
	return Rule{
		ID:       RuleIDExecFromTempDir,
		Name:     "Binary executed from a temporary directory",
		Version:  builtinRuleVersion,
		Author:   builtinRuleAuthor,
		License:  builtinRuleLicense,
		Severity: SeverityHigh,
		References: []string{
			sigmaRules + "process_creation/proc_creation_lnx_susp_exec_from_dev_shm.yml",
			sigmaRules + "process_creation/proc_creation_lnx_susp_execution_tmp_folder.yml",
		},
		Tactics:    []string{tacticExecution, tacticStealth},
		Techniques: []string{techFilelessStorage, techMasquerading},
	}
}

func (execFromTempDir) Detect(ev *ecs.Event) (Finding, bool) {
	p, ok := processStart(ev)
	if !ok {
		return Finding{}, false
	}
	exe := p.Executable
	if exe == "" && len(p.Args) > 0 && strings.HasPrefix(p.Args[0], "/") {
		exe = p.Args[0]
	}
	dir, ok := tempDir(exe)
	if !ok {
		return Finding{}, false
	}
	return Finding{
		Summary: fmt.Sprintf("%s (pid %d) was executed from the temporary directory %s.", clean(exe), p.PID, dir),
	}, true
}

// tempDir returns the temporary directory exe lies in, if any. The
// kernel reports a deleted executable with a " (deleted)" suffix, which
// changes nothing here.
func tempDir(exe string) (string, bool) {
	if !strings.HasPrefix(exe, "/") {
		return "", false
	}
	exe = path.Clean(exe)
	for _, d := range tempDirs {
		if strings.HasPrefix(exe, d+"/") {
			return d, true
		}
	}
	return "", false
}

// shellToSocket flags a shell whose input and output are a network
// connection: a reverse or bind shell.
type shellToSocket struct{}

func (shellToSocket) Rule() Rule {
	return Rule{
		ID:       RuleIDShellToSocket,
		Name:     "Interactive shell connected to a network socket",
		Version:  builtinRuleVersion,
		Author:   builtinRuleAuthor,
		License:  builtinRuleLicense,
		Severity: SeverityCritical,
		References: []string{
			sigmaRules + "builtin/lnx_shell_susp_rev_shells.yml",
			sigmaRules + "process_creation/proc_creation_lnx_netcat_reverse_shell.yml",
			sigmaRules + "network_connection/net_connection_lnx_back_connect_shell_dev.yml",
			"https://attack.mitre.org/techniques/T1095/",
		},
		Tactics:    []string{tacticExecution, tacticCommandControl},
		Techniques: []string{techUnixShell, techNonAppProtocol},
	}
}

var (
	// socketRedirRe matches a redirection to or from a bash network path.
	socketRedirRe = regexp.MustCompile(`(?:<>|>&|<&|&>|>|<) ?/dev/(?:tcp|udp)/`)
	// stdinRedirRe matches standard input taken from another descriptor or
	// straight from a bash network path.
	stdinRedirRe = regexp.MustCompile(`(?:^|[ ;&|()])0(?:>&|<&) ?[0-9]+|(?:^|[ ;&|()])0(?:<>|<|>) ?/dev/(?:tcp|udp)/`)
	// readLoopRe matches a loop that runs every line it reads.
	readLoopRe = regexp.MustCompile(`while read [^;]*; ?do \$`)
	// fdInRe and fdOutRe match "<&N" and ">&N" with N >= 3, a descriptor
	// the shell inherited.
	fdInRe  = regexp.MustCompile(`^0?<&([3-9]|[0-9]{2,})$`)
	fdOutRe = regexp.MustCompile(`^1?>&([3-9]|[0-9]{2,})$`)
)

var netcats = map[string]bool{
	"nc": true, "ncat": true, "netcat": true, "nc.traditional": true,
	"nc.openbsd": true, "pwncat": true,
}

func (shellToSocket) Detect(ev *ecs.Event) (Finding, bool) {
	p, ok := processStart(ev)
	if !ok {
		return Finding{}, false
	}
	raw := commandLine(p)
	line := normalize(raw)
	how := reverseShell(line, base(p.Executable))
	if how == "" {
		return Finding{}, false
	}
	return Finding{
		Summary: fmt.Sprintf("%s (pid %d) connected a shell to a network socket (%s): %s",
			processName(p), p.PID, how, clean(raw)),
	}, true
}

// reverseShell returns how the normalized command line attaches a shell
// to a socket, or "" if it does not. exe is the base name of the
// process's executable, which stands for the first program of the line
// when argv[0] was disguised.
func reverseShell(line, exe string) string {
	if !netcats[exe] && !strings.Contains(line, "/dev/") && !strings.Contains(line, "nc") &&
		!strings.Contains(line, "netcat") && !strings.Contains(line, "socat") &&
		!strings.Contains(line, "telnet") && !strings.Contains(line, "openssl") &&
		!strings.Contains(line, "<&") {
		return ""
	}
	segs := split(line)
	socket := socketRedirRe.MatchString(line)
	if socket && (stdinRedirRe.MatchString(line) || readLoopRe.MatchString(line)) {
		return "bash /dev/tcp or /dev/udp redirection"
	}
	for i, seg := range segs {
		for j, cmd := range commands(seg.words) {
			prog := base(cmd[0])
			if i == 0 && j == 0 && netcats[exe] {
				prog = exe
			}
			switch {
			case shells[prog]:
				sa := parseShellArgs(cmd[1:])
				if socket && sa.interactive {
					return "bash /dev/tcp or /dev/udp redirection"
				}
				if sa.interactive && fdShell(cmd[1:]) {
					return "shell on an inherited socket descriptor"
				}
			case netcats[prog]:
				if netcatExec(cmd[1:]) {
					return prog + " running a shell"
				}
			case prog == "socat":
				if socatExec(cmd[1:]) {
					return "socat running a shell"
				}
			}
		}
	}
	for _, pl := range pipelines(segs) {
		shell, net := false, false
		for _, seg := range pl {
			cmds := commands(seg.words)
			if len(cmds) == 0 {
				continue
			}
			inner := cmds[len(cmds)-1]
			if isShell(inner[0]) && parseShellArgs(inner[1:]).readsStdin() {
				shell = true
			}
			for _, cmd := range cmds {
				if netTool(cmd) {
					net = true
				}
			}
		}
		if shell && net {
			return "shell piped to a network client"
		}
	}
	return ""
}

// fdShell reports whether shell args read from and write to the same
// inherited descriptor (fd 3 or above), as in "sh -i <&3 >&3 2>&3".
func fdShell(args []string) bool {
	in, out := "", ""
	for _, a := range args {
		if m := fdInRe.FindStringSubmatch(a); m != nil {
			in = m[1]
		}
		if m := fdOutRe.FindStringSubmatch(a); m != nil {
			out = m[1]
		}
	}
	return in != "" && in == out
}

// netcatExec reports whether netcat args run a program with a shell:
// -e or -c (alone, in a cluster, or with the program attached), --exec,
// --sh-exec or --lua-exec.
func netcatExec(args []string) bool {
	exec, shell := false, false
	for _, a := range args {
		switch {
		case a == "--sh-exec" || strings.HasPrefix(a, "--sh-exec="):
			return true
		case a == "--exec" || strings.HasPrefix(a, "--exec=") || a == "--lua-exec" || strings.HasPrefix(a, "--lua-exec="):
			exec = true
			if _, v, ok := strings.Cut(a, "="); ok && isShell(v) {
				shell = true
			}
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			if k := strings.IndexAny(a[1:], "ec"); k >= 0 {
				exec = true
				if prog := a[k+2:]; prog != "" && isShell(prog) {
					shell = true
				}
			}
		case isShell(a):
			shell = true
		}
	}
	return exec && shell
}

// socatExec reports whether socat args join a program (exec: or system:)
// with a network address.
func socatExec(args []string) bool {
	exec, net := false, false
	for _, a := range args {
		name, _, ok := strings.Cut(a, ":")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ",")
		switch {
		case name == "exec" || name == "system":
			exec = true
		case strings.HasPrefix(name, "tcp") || strings.HasPrefix(name, "udp") ||
			strings.HasPrefix(name, "openssl") || strings.HasPrefix(name, "ssl") ||
			strings.HasPrefix(name, "sctp") || strings.HasPrefix(name, "socks") ||
			strings.HasPrefix(name, "proxy") || strings.HasPrefix(name, "vsock"):
			net = true
		}
	}
	return exec && net
}

// netTool reports whether a command is a network client or server that a
// shell could be piped to or from.
func netTool(cmd []string) bool {
	switch prog := base(cmd[0]); {
	case netcats[prog] || prog == "telnet" || prog == "socat":
		return true
	case prog == "openssl":
		for _, a := range cmd[1:] {
			if a == "s_client" || a == "s_server" {
				return true
			}
		}
	}
	return false
}

// downloadToShell flags downloaded content run by a shell straight away.
type downloadToShell struct{}

func (downloadToShell) Rule() Rule {
	return Rule{
		ID:       RuleIDDownloadToShell,
		Name:     "Download piped into a shell",
		Version:  builtinRuleVersion,
		Author:   builtinRuleAuthor,
		License:  builtinRuleLicense,
		Severity: SeverityHigh,
		References: []string{
			sigmaRules + "process_creation/proc_creation_lnx_curl_wget_exec_tmp.yml",
			sigmaRules + "process_creation/proc_creation_lnx_curl_usage.yml",
		},
		Tactics:    []string{tacticExecution, tacticCommandControl},
		Techniques: []string{techUnixShell, techIngressTransfer},
	}
}

var downloaders = map[string]bool{
	"curl": true, "wget": true, "wget2": true, "fetch": true, "lwp-request": true,
}

// evaluators run the text they are given as shell code, like a shell with
// -c does.
var evaluators = map[string]bool{"eval": true, "source": true, ".": true}

func (downloadToShell) Detect(ev *ecs.Event) (Finding, bool) {
	p, ok := processStart(ev)
	if !ok {
		return Finding{}, false
	}
	raw := commandLine(p)
	if !downloadPipe(normalize(raw)) {
		return Finding{}, false
	}
	return Finding{
		Summary: fmt.Sprintf("%s (pid %d) piped a download into a shell: %s",
			processName(p), p.PID, clean(raw)),
	}, true
}

// downloadPipe reports whether a normalized command line feeds the output
// of a downloader to a shell.
func downloadPipe(line string) bool {
	if !strings.Contains(line, "curl") && !strings.Contains(line, "wget") &&
		!strings.Contains(line, "fetch") && !strings.Contains(line, "lwp-") &&
		!strings.Contains(line, "/dev/tcp/") && !strings.Contains(line, "/dev/udp/") {
		return false
	}
	segs := split(line)
	// curl ... | [filters |] sh
	for _, pl := range pipelines(segs) {
		download := false
		for _, seg := range pl {
			cmds := commands(seg.words)
			if len(cmds) == 0 {
				continue
			}
			inner := cmds[len(cmds)-1]
			if download && isShell(inner[0]) && parseShellArgs(inner[1:]).readsStdin() {
				return true
			}
			if downloads(seg.words, cmds) {
				download = true
			}
		}
	}
	// sh -c "$(curl ...)", bash <(curl ...), eval `wget -O- ...`
	for i, seg := range segs[:len(segs)-1] {
		if seg.next != opCmdSub && seg.next != opProcIn && seg.next != opTick {
			continue
		}
		cmds := commands(seg.words)
		if len(cmds) == 0 || !runsSubstitution(cmds[len(cmds)-1]) {
			continue
		}
		next := segs[i+1]
		if downloads(next.words, commands(next.words)) {
			return true
		}
	}
	return false
}

// downloads reports whether a simple command runs a downloader or reads
// from a bash network path.
func downloads(words []string, cmds [][]string) bool {
	for _, cmd := range cmds {
		if downloaders[base(cmd[0])] {
			return true
		}
	}
	for i, w := range words {
		r, next := isRedirect(w)
		if !r || !strings.Contains(w, "<") {
			continue
		}
		if next && i+1 < len(words) {
			w = words[i+1]
		}
		if strings.Contains(w, "/dev/tcp/") || strings.Contains(w, "/dev/udp/") {
			return true
		}
	}
	return false
}

// runsSubstitution reports whether cmd, ending right before a command or
// process substitution, runs the substitution's output as code: a shell
// with -c or with the substitution as its script, or eval, source or '.'.
func runsSubstitution(cmd []string) bool {
	prog := base(cmd[0])
	if evaluators[prog] {
		return len(withoutRedirects(cmd[1:])) == 0
	}
	if !shells[prog] {
		return false
	}
	sa := parseShellArgs(cmd[1:])
	return len(withoutRedirects(sa.operands)) == 0
}

// processName returns the best name of p for a summary.
func processName(p *ecs.Process) string {
	switch {
	case p.Executable != "":
		return clean(p.Executable)
	case p.Name != "":
		return clean(p.Name)
	case len(p.Args) > 0:
		return clean(p.Args[0])
	}
	return "pid " + strconv.Itoa(p.PID)
}

// clean makes s safe and short enough for a one-line summary: control
// characters become spaces, and a long s is cut at a rune boundary.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxSummaryCommandLen {
		return s
	}
	cut := maxSummaryCommandLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
