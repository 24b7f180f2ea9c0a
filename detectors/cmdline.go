package detectors

import (
	"strings"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// This file reads command lines the way the built-in rules need: well
// enough to find which programs a shell line runs and how they are
// connected, without pretending to be a shell. Quotes are dropped rather
// than honoured, so the payload of "sh -c '...'" is split into commands
// like the outer line is.

// commandLine returns process.command_line, or process.args joined by
// spaces when the sensor gave no command line.
func commandLine(p *ecs.Process) string {
	if p.CommandLine != "" {
		return p.CommandLine
	}
	return strings.Join(p.Args, " ")
}

// normalize folds a command line for matching: ASCII letters lower-cased,
// quotes and backslashes removed, $IFS and ${IFS} read as a space,
// newlines read as ';', and runs of white space folded into one space.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drop leading white space
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$' && ifsLen(s[i:]) > 0:
			i += ifsLen(s[i:]) - 1
			c = ' '
		case c == '\'' || c == '"' || c == '\\':
			continue
		case c == '\n' || c == '\r':
			c = ';'
		case c == '\t' || c == '\v' || c == '\f':
			c = ' '
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " ")
}

// ifsLen returns the length of a $IFS reference at the start of s: $IFS,
// ${IFS}, and the $IFS$9 idiom; 0 if there is none.
func ifsLen(s string) int {
	switch {
	case len(s) >= 6 && strings.EqualFold(s[:6], "${ifs}"):
		return 6
	case len(s) >= 6 && strings.EqualFold(s[:4], "$ifs") && s[4] == '$' && '0' <= s[5] && s[5] <= '9':
		return 6
	case len(s) >= 4 && strings.EqualFold(s[:4], "$ifs"):
		if len(s) > 4 && isNameByte(s[4]) {
			return 0 // $IFSX is another variable
		}
		return 4
	}
	return 0
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Operators that end a simple command.
const (
	opEnd     = ""
	opPipe    = "|"
	opSeq     = ";"
	opAnd     = "&&"
	opOr      = "||"
	opBg      = "&"
	opOpen    = "("
	opClose   = ")"
	opCmdSub  = "$(" // command substitution
	opProcIn  = "<(" // process substitution, read side
	opProcOut = ">(" // process substitution, write side
	opTick    = "`"  // old-style command substitution
)

// segment is one simple command and the operator that ends it.
type segment struct {
	words []string
	next  string
}

// split cuts a normalized command line into simple commands.
func split(s string) []segment {
	var (
		segs []segment
		cur  segment
		word strings.Builder
	)
	endWord := func() {
		if word.Len() > 0 {
			cur.words = append(cur.words, word.String())
			word.Reset()
		}
	}
	endSeg := func(op string) {
		endWord()
		cur.next = op
		segs = append(segs, cur)
		cur = segment{}
	}
	lastByte := func() byte {
		if word.Len() == 0 {
			return 0
		}
		return word.String()[word.Len()-1]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ':
			endWord()
		case '|':
			if lastByte() == '>' { // >| clobbering redirection
				word.WriteByte(c)
				continue
			}
			if i+1 < len(s) && s[i+1] == '|' {
				i++
				endSeg(opOr)
				continue
			}
			if i+1 < len(s) && s[i+1] == '&' { // |& pipes stderr too
				i++
			}
			endSeg(opPipe)
		case ';':
			for i+1 < len(s) && s[i+1] == ';' {
				i++
			}
			endSeg(opSeq)
		case '&':
			switch {
			case i+1 < len(s) && s[i+1] == '&':
				i++
				endSeg(opAnd)
			case lastByte() == '>' || lastByte() == '<', i+1 < len(s) && s[i+1] == '>':
				word.WriteByte(c) // >&, <&, &>
			default:
				endSeg(opBg)
			}
		case '(':
			switch w := word.String(); {
			case strings.HasSuffix(w, "$"):
				word.Reset()
				word.WriteString(strings.TrimSuffix(w, "$"))
				endSeg(opCmdSub)
			case w == "<":
				word.Reset()
				endSeg(opProcIn)
			case w == ">":
				word.Reset()
				endSeg(opProcOut)
			default:
				endSeg(opOpen)
			}
		case ')':
			endSeg(opClose)
		case '`':
			endSeg(opTick)
		default:
			word.WriteByte(c)
		}
	}
	endSeg(opEnd)
	return segs
}

// pipelines groups segments joined by '|'.
func pipelines(segs []segment) [][]segment {
	var out [][]segment
	start := 0
	for i, s := range segs {
		if s.next != opPipe {
			if i > start {
				out = append(out, segs[start:i+1])
			}
			start = i + 1
		}
	}
	return out
}

// isRedirect reports whether w is a redirection word such as ">&",
// "2>&1", "<>/dev/tcp/x/1" or "&>log", and whether its target is the next
// word.
func isRedirect(w string) (redirect, targetNext bool) {
	i := 0
	for i < len(w) && '0' <= w[i] && w[i] <= '9' {
		i++
	}
	rest := w[i:]
	if rest == "" {
		return false, false
	}
	switch {
	case rest[0] == '<' || rest[0] == '>':
	case strings.HasPrefix(rest, "&>"):
	default:
		return false, false
	}
	if strings.HasSuffix(rest, "&-") { // closes the descriptor
		return true, false
	}
	return true, strings.TrimLeft(rest, "<>&|") == ""
}

func base(w string) string {
	if i := strings.LastIndexByte(w, '/'); i >= 0 {
		return w[i+1:]
	}
	return w
}

var shells = map[string]bool{
	"sh": true, "bash": true, "rbash": true, "dash": true, "zsh": true,
	"ksh": true, "ksh93": true, "mksh": true, "pdksh": true, "ash": true,
	"csh": true, "tcsh": true, "fish": true, "yash": true,
}

func isShell(w string) bool { return shells[base(w)] }

// keywords are skipped when looking for the program of a simple command.
var keywords = map[string]bool{
	"!": true, "{": true, "}": true, "do": true, "then": true, "else": true,
	"elif": true, "if": true, "while": true, "until": true, "time": true,
	"exec": true, "coproc": true,
}

// wrapper describes a program that runs another: which of its options
// take an argument, and how many operands precede the wrapped command.
type wrapper struct {
	argOpts  string // short options taking an argument
	operands int
}

var wrappers = map[string]wrapper{
	"sudo":     {argOpts: "ughpcrtUDCRT"},
	"doas":     {argOpts: "uC"},
	"env":      {argOpts: "uCS"},
	"nohup":    {},
	"nice":     {argOpts: "n"},
	"ionice":   {argOpts: "cnp"},
	"setsid":   {},
	"stdbuf":   {argOpts: "ioe"},
	"timeout":  {argOpts: "sk", operands: 1},
	"chroot":   {operands: 1},
	"taskset":  {operands: 1},
	"command":  {},
	"builtin":  {},
	"busybox":  {},
	"unbuffer": {},
	"xargs":    {argOpts: "adeEIiLlnPs"},
}

// commands returns the commands a simple command runs, outermost first:
// the command itself (from its program word on, past assignments,
// keywords, redirections and wrappers) and, when that program is a shell
// or su given -c, the command at the start of the -c payload, and so on.
// Each returned slice starts with the program word.
func commands(words []string) [][]string {
	var out [][]string
	for len(words) > 0 {
		i := commandIndex(words)
		if i < 0 {
			break
		}
		words = words[i:]
		out = append(out, words)
		words = cPayload(words[0], words[1:])
	}
	return out
}

// commandIndex returns the index of the program word of a simple command,
// or -1.
func commandIndex(words []string) int {
	skipNext := false
	var w *wrapper
	operands := 0
	for i, word := range words {
		if skipNext {
			skipNext = false
			continue
		}
		if r, next := isRedirect(word); r {
			skipNext = next
			continue
		}
		if w != nil {
			if strings.HasPrefix(word, "-") && len(word) > 1 {
				if len(word) == 2 && strings.IndexByte(w.argOpts, word[1]) >= 0 {
					skipNext = true
				}
				continue
			}
			if operands > 0 {
				operands--
				continue
			}
		}
		if isAssignment(word) || keywords[word] {
			continue
		}
		if wr, ok := wrappers[base(word)]; ok {
			w = &wr
			operands = wr.operands
			continue
		}
		return i
	}
	return -1
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		if !isNameByte(w[i]) {
			return false
		}
	}
	return !('0' <= w[0] && w[0] <= '9')
}

// shellArgs is what a shell's arguments say about how it runs.
type shellArgs struct {
	command     bool     // -c: runs a command string
	stdin       bool     // -s: reads commands from standard input
	interactive bool     // -i
	script      bool     // runs a script file named by its first operand
	operands    []string // the words after the options
}

// parseShellArgs reads the options of sh-like shells: clusters of
// single-letter options after '-' or '+', -o/+o with an option name,
// GNU-style long options, and '-' or '--' to end them. Redirections are
// skipped wherever they stand.
func parseShellArgs(args []string) shellArgs {
	var sa shellArgs
	skipNext := false
	for i, a := range args {
		if skipNext {
			skipNext = false
			continue
		}
		if r, next := isRedirect(a); r {
			skipNext = next
			continue
		}
		switch {
		case a == "-" || a == "--":
			sa.operands = args[i+1:]
		case strings.HasPrefix(a, "--"):
			if a == "--rcfile" || a == "--init-file" {
				skipNext = true
			}
			continue
		case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
			for _, c := range a[1:] {
				switch c {
				case 'c':
					sa.command = true
				case 's':
					sa.stdin = true
				case 'i':
					sa.interactive = true
				case 'o', 'O':
					skipNext = true
				}
			}
			continue
		default:
			sa.operands = args[i:]
		}
		break
	}
	sa.script = !sa.command && !sa.stdin && len(withoutRedirects(sa.operands)) > 0
	return sa
}

// readsStdin reports whether the shell reads its commands from standard
// input.
func (sa shellArgs) readsStdin() bool { return !sa.command && !sa.script }

func withoutRedirects(words []string) []string {
	var out []string
	skipNext := false
	for _, w := range words {
		if skipNext {
			skipNext = false
			continue
		}
		if r, next := isRedirect(w); r {
			skipNext = next
			continue
		}
		out = append(out, w)
	}
	return out
}

// cPayload returns the words after a shell's -c option (or su's -c or
// --command), or nil when prog runs no command string.
func cPayload(prog string, args []string) []string {
	b := base(prog)
	switch {
	case shells[b]:
		if sa := parseShellArgs(args); sa.command {
			return sa.operands
		}
	case b == "su":
		for i, a := range args {
			if a == "-c" || a == "--command" {
				return args[i+1:]
			}
			if strings.HasPrefix(a, "--command=") {
				return append([]string{strings.TrimPrefix(a, "--command=")}, args[i+1:]...)
			}
		}
	}
	return nil
}
