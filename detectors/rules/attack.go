package rules

import (
	"slices"
	"strings"

	"github.com/cordon-edr/cordon/detectors/sigma"
)

// extraTechniques gives an ATT&CK technique to the SigmaHQ rules whose
// tags name only a tactic, so that every finding carries a technique.
// The choice is Cordon's, keyed by rule id; a rule that gains its own
// technique tag upstream keeps its own.
var extraTechniques = map[string]string{
	"0fadd880-6af3-4610-b1e5-008dc3a11b8a": "T1014",     // Potential Suspicious BPF Activity: eBPF rootkits
	"f64b6e9a-5d9d-48a5-8289-e1dd2b3876e1": "T1040",     // Suspicious Log Entries: promiscuous mode
	"6cc5fceb-9a71-4c23-aeeb-963abe0b279c": "T1059.004", // Suspicious Use of /dev/tcp: shell redirections to sockets
	"13f08f54-e705-4498-91fd-cce9d9cee9f1": "T1546.004", // Shell Script Creation in Profile Folder
	"c0239255-822c-4630-b7f1-35362bcb8f44": "T1014",     // Triple Cross eBPF Rootkit Default LockFile
	"6104e693-a7d6-4891-86cb-49a258523559": "T1059.004", // Bash Interactive Shell
	"7692f583-bd30-4008-8615-75dab3f08a99": "T1014",     // Enable BPF Kprobes Tracing
	"c2e234de-03a3-41e1-b39a-1e56dc17ba67": "T1070",     // Remove Scheduled Cron Task/Job
	"9d779ce8-5256-4b13-8b6f-b91c602b43f4": "T1559",     // Named Pipe Created Via Mkfifo
	"999c3b12-0a8c-40b6-8e13-dd7d62b75c7a": "T1559",     // Suspicious Named Pipe Created Via Mkfifo
	"457df417-8b9d-4912-85f3-9dbda39c3645": "T1059.004", // Suspicious Nohup Execution
	"259df6bc-003f-4306-9f54-4ff1a08fa38e": "T1059",     // Potential Perl Reverse Shell Execution
	"c6714a24-d7d5-4283-a36b-3ffd091d5f7e": "T1059",     // Potential PHP Reverse Shell
	"32e62bc7-3de0-4bb1-90af-532978fe42c0": "T1059.006", // Python Reverse Shell Via PTY And Socket
	"b8bdac18-c06e-4016-ac30-221553e74f59": "T1059",     // Potential Ruby Reverse Shell
	"2fade0b6-7423-4835-9d4f-335b39b83867": "T1059.004", // Shell Execution Of Process Located In Tmp
	"30bcce26-51c5-49f2-99c8-7b59e3af36c7": "T1059.004", // Script Located In Suspicious Directory
	"0326c3c8-7803-4a0f-8c5c-368f747f7c3e": "T1014",     // Triple Cross eBPF Rootkit Execve Hijack
	"6a50f16c-3b7b-42d1-b081-0fdd3ba70a73": "T1098",     // User Added To Root/Sudoers Group Using Usermod
}

// addTechniques tags r with its extra technique when its own tags name
// none.
func addTechniques(r *sigma.Rule) {
	t, ok := extraTechniques[r.ID]
	if !ok {
		return
	}
	if _, techs := sigma.Attack(r.Tags); len(techs) > 0 {
		return
	}
	r.Tags = append(slices.Clone(r.Tags), "attack."+strings.ToLower(t))
}
