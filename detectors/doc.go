// Package detectors turns normalized events into findings.
//
// A Detector looks at one ecs.Event and reports at most one Finding; an
// Engine runs a set of detectors over every event and fills in what the
// rules share (rule metadata, severity, ATT&CK ids, evidence, times).
// Detectors are pure: no I/O, no goroutines, and the only clock is the one
// the Engine is given, so the same events always yield the same findings.
//
// A Batch is a set of rules evaluated together, sharing per-event work, as
// the compiled Sigma rules of package sigma are; Engine.AddBatch adds one.
// Engine.SetNoiseWindow folds repeats of a rule on one process tree.
// Package stateful holds the detectors that need more than one event.
//
// # Built-in rules
//
// Builtin returns Cordon's built-in rule set for process start events:
//
//   - exec-from-temp-dir: a binary executed from /tmp, /var/tmp or
//     /dev/shm (paths are matched case-sensitively, after path.Clean).
//   - shell-to-socket: an interactive shell whose stdin and stdout are a
//     network socket (bash /dev/tcp and /dev/udp redirections, netcat or
//     ncat with -e/-c, socat exec: with a network address, a stdin shell
//     piped to or from netcat, telnet or openssl s_client).
//   - download-piped-to-shell: the output of curl, wget, fetch or
//     lwp-request fed to a shell through a pipe, a process substitution
//     (bash <(curl ...)) or a command substitution (sh -c "$(curl ...)").
//
// Command lines are matched robustly rather than literally: they are
// lower-cased, quotes and backslashes are removed, $IFS is read as a
// space, and the line is split into simple commands at shell operators,
// so "sh -c 'curl -s http://x | sudo bash'" and "curl http://x|bash" match
// alike. Common wrappers (sudo, env, nohup, timeout, busybox, ...) are
// looked through to find the program a simple command runs.
//
// Near misses that must not fire, and do not, include /usr/bin/tmpwatch,
// /tmpfoo/x, "curl -o file http://x", "curl http://x | jq .",
// "cat install.sh | sh", "grep /dev/tcp notes.txt", a port probe such as
// "bash -c 'echo > /dev/tcp/db/5432'" (no shell is attached to the
// socket), "socat tcp-listen:80,fork tcp:backend:80" and
// "sh report.sh | nc metrics 2003" (a script, not a shell reading
// commands). Vendor installers of the form "curl ... | sh" do fire: that is
// exactly the behaviour the rule describes.
//
// # ATT&CK mapping
//
// Tactic and technique ids follow ATT&CK v19, where Defense Evasion is
// split into Stealth (TA0005) and Defense Impairment (TA0112). Each
// built-in rule lists, in its references, the SigmaHQ rules whose tags it
// follows.
package detectors
