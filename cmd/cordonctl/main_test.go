package main

import (
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	pin := fakePin()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		setup func(f *fakeAPI)
		code  int
		// reqs are the requests expected, in order ("GET /path?query").
		reqs []string
		// body is the JSON body expected of the first request with one.
		body string
		// auth is the Authorization header expected on every request.
		auth     string
		stdout   []string // substrings of stdout
		noStdout []string // strings stdout must not contain
		stderr   []string // substrings of stderr
		last     string   // the last line of stdout
		// jsonIDs, when set, says stdout is one JSON array of objects with
		// these ids, in order.
		jsonIDs []string
		// jsonID, when set, says stdout is one JSON object with this id.
		jsonID string
	}{
		{
			name: "agents table over two pages",
			args: []string{"agents"},
			reqs: []string{"GET /api/v1/agents?limit=1000", "GET /api/v1/agents?cursor=2&limit=1000"},
			stdout: []string{
				"ID  HOSTNAME  ONLINE   ISOLATED  RULES                     TAGS                       LAST SEEN\n",
				"a1  web-1     yes      no        2-5f1c0a9e2b7d            criticality=high,env=prod  12s ago\n",
				"a2  db-1      no       yes       built-in (refused a set)  -                          3h ago\n",
				"a3  old-1     revoked  no        built-in                  -                          never\n",
			},
		},
		{
			name:    "agents json",
			args:    []string{"agents", "--json"},
			reqs:    []string{"GET /api/v1/agents?limit=1000", "GET /api/v1/agents?cursor=2&limit=1000"},
			jsonIDs: []string{"a1", "a2", "a3"},
			stdout:  []string{`"spool_pending": 4`, `"last_seen": "2025-06-01T11:59:48Z"`},
		},
		{
			name: "rules table counts the agents running the set",
			args: []string{"rules"},
			reqs: []string{"GET /api/v1/rules", "GET /api/v1/agents?limit=1000", "GET /api/v1/agents?cursor=2&limit=1000"},
			stdout: []string{
				"version            2-5f1c0a9e2b7d\n",
				"rules              7\n",
				"pushed by          alice\n",
				"agents running it  1 of 2\n",
				"  web/b.yml\n",
			},
		},
		{
			name:   "rules json is the answer as it came",
			args:   []string{"rules", "--json"},
			reqs:   []string{"GET /api/v1/rules"},
			stdout: []string{`"rules": 7`, `"pushed_by": "alice"`},
		},
		{
			name: "ioc table counts the agents matching the set",
			args: []string{"ioc"},
			reqs: []string{"GET /api/v1/iocs", "GET /api/v1/agents?limit=1000", "GET /api/v1/agents?cursor=2&limit=1000"},
			stdout: []string{
				"indicators          3 (1 domain, 2 sha256)\n",
				"file                feed.txt\n",
				"agents matching it  1 of 2\n",
			},
		},
		{
			name:    "json flag before the command",
			args:    []string{"--json", "agents"},
			jsonIDs: []string{"a1", "a2", "a3"},
		},
		{
			name: "findings with filters",
			args: []string{"findings", "--agent", "a1", "--incident=i1", "--json"},
			reqs: []string{
				"GET /api/v1/findings?agent=a1&incident=i1&limit=1000",
				"GET /api/v1/findings?agent=a1&cursor=2&incident=i1&limit=1000",
			},
			jsonIDs: []string{"f1", "f2", "f3"},
		},
		{
			name: "findings table",
			args: []string{"findings", "--severity", "high"},
			reqs: []string{"GET /api/v1/findings?limit=1000&severity=high", "GET /api/v1/findings?cursor=2&limit=1000&severity=high"},
			stdout: []string{
				"ID  AGENT  SEVERITY  RULE              TECHNIQUES  DETECTED",
				"f1  a1     critical  Reverse shell     T1059.004   2025-06-01 11:59:00Z",
				"f3  a2     low       r-x               -           2025-06-01 11:00:00Z",
			},
		},
		{
			name:    "incidents by status, flags after the command",
			args:    []string{"incidents", "--json", "--status", "new"},
			reqs:    []string{"GET /api/v1/incidents?limit=1000&status=new", "GET /api/v1/incidents?cursor=2&limit=1000&status=new"},
			jsonIDs: []string{"i1", "i2", "i3"},
		},
		{
			name: "incidents table",
			args: []string{"incidents"},
			stdout: []string{
				"ID  PRIORITY  STATUS         TYPE     TITLE",
				"HOSTS  FINDINGS  ASSIGNEE  DRILL",
				`i1  P1        investigating  malware  Reverse shell on web-1 \u001b[31mred  1      2         alice`,
				"i2  P4        new            drill    Drill on db-1",
				"drill",
			},
			noStdout: []string{"\x1b"},
		},
		{
			name: "incident show",
			args: []string{"incident", "show", "i1"},
			reqs: []string{
				"GET /api/v1/incidents/i1",
				"GET /api/v1/findings?incident=i1&limit=1000",
				"GET /api/v1/findings?cursor=2&incident=i1&limit=1000",
			},
			stdout: []string{
				"Incident i1\n",
				"Status:             investigating",
				"Priority:           P1 (impact 2, urgency 1)",
				"Asset criticality:  high",
				"Detected:           2025-06-01 11:59:00Z (1m ago)",
				"Affected hosts (1):\n  a1\n",
				"Affected users (1):\n  www-data\n",
				"Findings (3):\n  ID  AGENT  SEVERITY",
				"  f2  a1     high      Cron persistence",
				"Timeline (2):\n  2025-06-01 11:59:00Z  system  opened  from finding f1\n",
				`alice   status  {"from":"new","to":"investigating"}`,
			},
			noStdout: []string{"\x1b"},
		},
		{
			name:   "incident show json",
			args:   []string{"incident", "show", "--json", "i2"},
			reqs:   []string{"GET /api/v1/incidents/i2"},
			jsonID: "i2",
		},
		{
			name:   "incident show unknown",
			args:   []string{"incident", "show", "nope"},
			code:   1,
			stderr: []string{"cordonctl: incident show: no such incident\n"},
		},
		{
			name:   "incident update",
			args:   []string{"incident", "update", "i1", "--status", "contained", "--impact=2", "--comment", "host isolated", "--assignee", ""},
			reqs:   []string{"PATCH /api/v1/incidents/i1"},
			body:   `{"status":"contained","impact":2,"comment":"host isolated","assignee":""}`,
			stdout: []string{"incident i1 updated: status contained, priority P3, assignee -\n"},
		},
		{
			name:   "incident update json",
			args:   []string{"incident", "update", "--urgency", "4", "i1", "--json"},
			body:   `{"urgency":4}`,
			jsonID: "i1",
		},
		{
			name: "incident update refused with field",
			args: []string{"incident", "update", "i1", "--status", "closed"},
			setup: func(f *fakeAPI) {
				f.failures["PATCH /api/v1/incidents/i1"] = fakeFailure{409, `{"error":"invalid transition from investigating to closed","field":"status"}`}
			},
			code:   1,
			stderr: []string{"cordonctl: incident update: status: invalid transition from investigating to closed\n"},
		},
		{
			name:   "incident update with a review",
			args:   []string{"incident", "update", "i1", "--status", "closed", "--review-root-cause", "weak password", "--review-lessons", "MFA", "--review-followup", "enforce MFA", "--review-followup=rotate keys"},
			reqs:   []string{"PATCH /api/v1/incidents/i1"},
			body:   `{"status":"closed","review":{"root_cause":"weak password","lessons_learned":"MFA","follow_up_actions":["enforce MFA","rotate keys"]}}`,
			stdout: []string{"incident i1 updated: status closed"},
		},
		{
			name:   "incident update with half a review",
			args:   []string{"incident", "update", "i1", "--review-root-cause", "weak password"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"a review needs --review-root-cause, --review-lessons and at least one --review-followup"},
		},
		{
			name:   "incident comment",
			args:   []string{"incident", "comment", "i1", "called the web team"},
			reqs:   []string{"PATCH /api/v1/incidents/i1"},
			body:   `{"comment":"called the web team"}`,
			stdout: []string{"comment added to incident i1\n"},
		},
		{
			name:   "incident check",
			args:   []string{"incident", "check", "i1", "triage", "--comment", "hash is known bad"},
			reqs:   []string{"PATCH /api/v1/incidents/i1"},
			body:   `{"check":"triage","comment":"hash is known bad"}`,
			stdout: []string{"incident i1: step triage done\n"},
		},
		{
			name: "incident check undo",
			args: []string{"incident", "check", "--undo", "i1", "triage"},
			body: `{"uncheck":"triage"}`,
		},
		{
			name:   "incident approve",
			args:   []string{"incident", "approve", "i1", "isolate-hosts/a1"},
			body:   `{"approve":"isolate-hosts/a1"}`,
			stdout: []string{"incident i1: isolate-hosts/a1 approved\n"},
		},
		{
			name:   "incident comment without text",
			args:   []string{"incident", "comment", "i1"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"missing TEXT"},
		},
		{
			name: "incident stats",
			args: []string{"incident", "stats"},
			reqs: []string{"GET /api/v1/incidents/stats"},
			stdout: []string{
				"INCIDENTS  OPEN  MTTD  MTTA   MTTC  MTTR",
				"real   3          2     4s    1m30s  1h    -     1             0",
			},
		},
		{
			name: "incident show with service level, review and similar incidents",
			args: []string{"incident", "show", "i1"},
			stdout: []string{
				"Service level:\n  Acknowledge by:  2025-06-01 12:14:00Z  ok\n  Contain by:      2025-06-01 12:59:00Z  BREACHED\n",
				"Playbook: Malicious code response (embedded:malware.yaml)\n  [x] triage  Confirm the process\n  [ ] scope  Look elsewhere\n  action isolate-hosts/a1: awaiting_approval\n",
				"Review:\n  Root cause: unpatched | web app\n  Lessons learned: patch faster\n  Follow-up: patch CMS\n  Follow-up: add WAF\n",
				"Similar closed incidents (1):\n  i0  P2  closed  Shell on web-2\n    shares: rule:r-revshell\n    root cause: old plugin\n",
			},
		},
		{
			name: "incident report",
			args: []string{"incident", "report", "i1"},
			reqs: []string{
				"GET /api/v1/incidents/i1",
				"GET /api/v1/findings?incident=i1&limit=1000",
				"GET /api/v1/findings?cursor=2&incident=i1&limit=1000",
				"GET /api/v1/commands?agent=a1&limit=1000",
				"GET /api/v1/commands?agent=a1&cursor=2&limit=1000",
			},
			stdout: []string{
				"# Incident report: Reverse shell on web-1 ",
				"## Summary\n\n| | |\n|---|---|\n| Incident | `i1` |\n| Status | investigating |\n| Priority | P1 |",
				"| Impact | 2 (set by a responder) |\n| Urgency | 1 |",
				"| ATT&CK techniques | T1059.004 |",
				"| Contain | 2025-06-01 12:59:00Z | — | yes |",
				"| `f1` | a1 | critical | Reverse shell",
				"| `c-old1` | isolate | a1 | alice | succeeded | isolated | contain |",
				"| 2025-06-01 11:59:00Z | system | opened | from finding f1 |",
				"**Root cause.** unpatched \\| web app",
				"## Playbook: Malicious code response\n\n- [x] Confirm the process (alice, 2025-06-01 11:59:40Z)\n- [ ] Look elsewhere\n",
				"| isolate | a1 | awaiting_approval | waits |",
				"- patch CMS\n- add WAF\n",
				"## Similar closed incidents",
			},
			noStdout: []string{"\x1b", "c-old2"},
		},
		{
			name:   "incident update with nothing to update",
			args:   []string{"incident", "update", "i1"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: incident update: nothing to update", "usage: cordonctl incident update ID"},
		},
		{
			name:   "incident update bad impact",
			args:   []string{"incident", "update", "i1", "--impact", "high"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`cordonctl: incident update: invalid value "high" for flag --impact`, "usage: cordonctl incident update"},
		},
		{
			name:   "enroll-token create",
			args:   []string{"enroll-token", "create", "--ttl", "1h30m", "--uses", "3", "--tag", "criticality=high", "--tag=env=prod"},
			reqs:   []string{"POST /api/v1/enroll-tokens"},
			body:   `{"ttl":"1h30m","uses":3,"tags":{"criticality":"high","env":"prod"}}`,
			stdout: []string{"id:       t9", "expires:  2025-06-01 13:30:00Z", "tags:     criticality=high,env=prod"},
			last:   "cdt_ENROLLTOKENENROLLTOKENENROLLTO",
		},
		{
			name: "enroll-token create defaults",
			args: []string{"enroll-token", "create"},
			body: `{"ttl":"24h","uses":1,"tags":{}}`,
			last: "cdt_ENROLLTOKENENROLLTOKENENROLLTO",
		},
		{
			name:   "enroll-token create json",
			args:   []string{"enroll-token", "create", "--json"},
			jsonID: "t9",
			stdout: []string{`"token": "cdt_ENROLLTOKENENROLLTOKENENROLLTO"`},
		},
		{
			name:   "enroll-token create bad tag",
			args:   []string{"enroll-token", "create", "--tag", "novalue"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`invalid value "novalue" for flag --tag: want key=value`},
		},
		{
			name:    "enroll-token list",
			args:    []string{"enroll-token", "list", "--json"},
			reqs:    []string{"GET /api/v1/enroll-tokens?limit=1000"},
			jsonIDs: []string{"t1"},
		},
		{
			name:   "api-key create",
			args:   []string{"api-key", "create", "--name", "ci", "--role", "viewer"},
			reqs:   []string{"POST /api/v1/api-keys"},
			body:   `{"name":"ci","role":"viewer"}`,
			stdout: []string{"name:  ci", "role:  viewer"},
			last:   "cdk_NEWKEYNEWKEYNEWKEYNEWKEYNEWKEY2",
		},
		{
			name:   "api-key create without name",
			args:   []string{"api-key", "create", "--role", "admin"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: api-key create: --name is required\n", "usage: cordonctl api-key create --name NAME"},
		},
		{
			name:   "api-key create bad role",
			args:   []string{"api-key", "create", "--name", "x", "--role", "root"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`--role: want viewer, responder, admin, got "root"`},
		},
		{
			name: "api-key create forbidden",
			args: []string{"api-key", "create", "--name", "x", "--role", "admin"},
			setup: func(f *fakeAPI) {
				f.failures["POST /api/v1/api-keys"] = fakeFailure{403, `{"error":"needs role admin"}`}
			},
			code:   1,
			stderr: []string{"cordonctl: api-key create: needs role admin (the API key's role is too low for this)\n"},
		},
		{
			name:   "api-key list",
			args:   []string{"api-key", "list"},
			reqs:   []string{"GET /api/v1/api-keys?limit=1000"},
			stdout: []string{"ID  NAME   ROLE   CREATED               REVOKED", "k1  admin  admin  2025-06-01 11:00:00Z  no"},
		},
		{
			name: "ca-pin",
			args: []string{"ca-pin"},
			reqs: []string{"GET /api/v1/ca"},
			last: pin,
		},
		{
			name:   "ca-pin mismatching its certificate",
			args:   []string{"ca-pin"},
			setup:  func(f *fakeAPI) { f.caPin = "sha256:" + strings.Repeat("ab", 32) },
			code:   1,
			stderr: []string{"cordonctl: ca-pin: the CA pin returned by the API does not match its certificate"},
		},
		{
			name:   "isolate",
			args:   []string{"isolate", "a1", "--reason", "reverse shell", "--incident", "i1"},
			reqs:   []string{"POST /api/v1/commands"},
			body:   `{"agent_id":"a1","action":"isolate","args":{},"reason":"reverse shell","incident_id":"i1"}`,
			stdout: []string{"command cmd-1: isolate on a1: pending\n"},
		},
		{
			name:   "isolate without reason",
			args:   []string{"isolate", "a1"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: isolate: --reason is required\n", "usage: cordonctl isolate AGENT --reason TEXT"},
		},
		{
			name:   "isolate without agent",
			args:   []string{"isolate", "--reason", "x"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: isolate: missing AGENT\n", "usage: cordonctl isolate"},
		},
		{
			name: "isolate and wait: succeeded",
			args: []string{"isolate", "--wait", "a1", "--reason=x"},
			reqs: []string{"POST /api/v1/commands", "GET /api/v1/commands/cmd-1", "GET /api/v1/commands/cmd-1"},
			stderr: []string{
				"waiting for command cmd-1 (isolate on a1): pending\n  delivered\n  succeeded\n",
			},
			stdout: []string{"command cmd-1: isolate on a1: succeeded: isolated: 3 rules installed\n"},
		},
		{
			name:   "isolate and wait json",
			args:   []string{"isolate", "a1", "--reason", "x", "--wait", "--json"},
			jsonID: "cmd-1",
			stdout: []string{`"status": "succeeded"`},
		},
		{
			name: "isolate unknown agent",
			args: []string{"isolate", "zz", "--reason", "x", "--wait"},
			setup: func(f *fakeAPI) {
				f.failures["POST /api/v1/commands"] = fakeFailure{404, `{"error":"unknown agent","field":"agent_id"}`}
			},
			code:   1,
			reqs:   []string{"POST /api/v1/commands"},
			stderr: []string{"cordonctl: isolate: agent_id: unknown agent\n"},
		},
		{
			name:   "kill and wait: failed",
			args:   []string{"kill", "a2", "--pid", "4242", "--wait"},
			reqs:   []string{"POST /api/v1/commands", "GET /api/v1/commands/cmd-1", "GET /api/v1/commands/cmd-1"},
			body:   `{"agent_id":"a2","action":"kill","args":{"pid":"4242"},"reason":""}`,
			code:   1,
			stdout: []string{"command cmd-1: kill on a2: failed: no such process\n"},
			stderr: []string{"  failed\n", "cordonctl: kill: command cmd-1 failed: no such process\n"},
		},
		{
			name:   "kill without pid",
			args:   []string{"kill", "a2"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: kill: --pid is required\n", "usage: cordonctl kill AGENT --pid N"},
		},
		{
			name:   "release and wait: expired",
			args:   []string{"release", "a2", "--wait"},
			setup:  func(f *fakeAPI) { f.scripts["release"] = []step{{"expired", "not delivered before expiry"}} },
			body:   `{"agent_id":"a2","action":"release","args":{},"reason":""}`,
			code:   1,
			stderr: []string{"  expired\n", "cordonctl: release: command cmd-1 expired: not delivered before expiry\n"},
		},
		{
			name:   "drill and wait: timeout",
			args:   []string{"drill", "a1", "--scenario", "reverse-shell", "--wait", "--timeout", "60ms"},
			setup:  func(f *fakeAPI) { f.scripts["drill"] = []step{{"delivered", ""}} },
			body:   `{"agent_id":"a1","action":"drill","args":{"scenario":"reverse-shell"},"reason":""}`,
			code:   1,
			stderr: []string{"  delivered\n", "cordonctl: drill: timed out after 60ms waiting for command cmd-1 (last status delivered)"},
		},
		{
			name:   "drill",
			args:   []string{"drill", "a1"},
			body:   `{"agent_id":"a1","action":"drill","args":{},"reason":""}`,
			stdout: []string{"command cmd-1: drill on a1: pending\n"},
		},
		{
			name:    "commands json",
			args:    []string{"commands", "--agent", "a2", "--json"},
			reqs:    []string{"GET /api/v1/commands?agent=a2&limit=1000", "GET /api/v1/commands?agent=a2&cursor=2&limit=1000"},
			jsonIDs: []string{"c-old1", "c-old2", "c-old3"},
		},
		{
			name: "commands table",
			args: []string{"commands"},
			stdout: []string{
				"ID      AGENT  ACTION   STATUS     REQUESTED BY  CREATED               RESULT",
				`c-old2  a2     kill     failed     bob           -                     {"error":"no such process"}`,
			},
		},
		{
			name:   "no API key",
			args:   []string{"agents"},
			env:    map[string]string{"CORDON_TOKEN": ""},
			auth:   "-",
			code:   1,
			reqs:   []string{"GET /api/v1/agents?limit=1000"},
			stderr: []string{"cordonctl: agents: no API key: set CORDON_TOKEN (the collector printed an admin key on first run; it is also in DATA/admin.token)\n"},
		},
		{
			name:   "wrong API key",
			args:   []string{"incidents"},
			env:    map[string]string{"CORDON_TOKEN": "cdk_wrong"},
			auth:   "Bearer cdk_wrong",
			code:   1,
			stderr: []string{"cordonctl: incidents: missing or unknown API key: the API key was refused; set CORDON_TOKEN"},
		},
		{
			name:    "flags override the environment",
			args:    []string{"agents", "--json", "--token", testKey},
			env:     map[string]string{"CORDON_TOKEN": "cdk_wrong"},
			jsonIDs: []string{"a1", "a2", "a3"},
		},
		{
			name:   "server error that is not JSON",
			args:   []string{"agents"},
			setup:  func(f *fakeAPI) { f.failures["GET /api/v1/agents"] = fakeFailure{502, "upstream down"} },
			code:   1,
			stderr: []string{"cordonctl: agents: 502 Bad Gateway: upstream down\n"},
		},
		{
			name:   "unknown flag",
			args:   []string{"agents", "--wide"},
			code:   2,
			reqs:   []string{},
			stderr: []string{"cordonctl: agents: flag provided but not defined: --wide\n", "usage: cordonctl agents [--json]"},
		},
		{
			name:   "unexpected argument",
			args:   []string{"agents", "extra"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`cordonctl: agents: unexpected argument "extra"`},
		},
		{
			name:   "unknown command",
			args:   []string{"frobnicate"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`cordonctl: unknown command "frobnicate"`, "exit codes:"},
		},
		{
			name:   "unknown subcommand",
			args:   []string{"incident", "delete", "i1"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`cordonctl: incident: unknown subcommand "delete" (want add-host, approve, check, comment, hunt, hunt-results, report, show, stats, update)`, "cordonctl incident show ID"},
		},
		{
			name:   "bad API address",
			args:   []string{"agents"},
			env:    map[string]string{"CORDON_API": "127.0.0.1:7480"},
			code:   2,
			reqs:   []string{},
			stderr: []string{`cordonctl: agents: bad API address "127.0.0.1:7480"`},
		},
		{
			name:   "help",
			args:   []string{"help"},
			reqs:   []string{},
			stdout: []string{"exit codes:\n  0  success", "  2  usage error", "  3  the API could not be reached", "CORDON_TOKEN", "incident update"},
		},
		{
			name:   "help of one command",
			args:   []string{"help", "incident", "update"},
			reqs:   []string{},
			stdout: []string{"usage: cordonctl incident update ID", "--comment TEXT", "--impact N"},
		},
		{
			name:   "--help after a command",
			args:   []string{"enroll-token", "create", "--help"},
			reqs:   []string{},
			stdout: []string{"usage: cordonctl enroll-token create", "--tag k=v", "(default 24h)"},
		},
		{
			name:   "no arguments",
			args:   nil,
			code:   2,
			reqs:   []string{},
			stderr: []string{"usage: cordonctl [--api URL] [--token KEY] COMMAND"},
		},
		{
			name:   "version",
			args:   []string{"version"},
			reqs:   []string{},
			stdout: []string{"cordonctl "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			code, stdout, stderr := f.runCLI(tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			reqs := f.requests()
			if tt.reqs != nil {
				var got []string
				for _, r := range reqs {
					got = append(got, r.String())
				}
				if len(got) != len(tt.reqs) || (len(got) > 0 && !reflect.DeepEqual(got, tt.reqs)) {
					t.Errorf("requests:\n%swant:\n  %s", fmtReqs(reqs), strings.Join(tt.reqs, "\n  "))
				}
			}
			wantAuth := "Bearer " + testKey
			switch tt.auth {
			case "":
			case "-":
				wantAuth = ""
			default:
				wantAuth = tt.auth
			}
			for _, r := range reqs {
				if r.Auth != wantAuth {
					t.Errorf("%s: Authorization %q, want %q", r, r.Auth, wantAuth)
				}
			}
			if tt.body != "" {
				var got *request
				for i := range reqs {
					if reqs[i].Body != "" {
						got = &reqs[i]
						break
					}
				}
				if got == nil {
					t.Fatalf("no request with a body; want %s", tt.body)
				}
				if got.CType != "application/json" {
					t.Errorf("%s: Content-Type %q", got, got.CType)
				}
				if g, w := mustJSON(t, got.Body), mustJSON(t, tt.body); !reflect.DeepEqual(g, w) {
					t.Errorf("%s: body %s, want %s", got, got.Body, tt.body)
				}
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.noStdout {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout contains %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.code == 0 && len(tt.stderr) == 0 && stderr != "" && !strings.Contains(strings.Join(tt.args, " "), "--wait") {
				t.Errorf("unexpected stderr:\n%s", stderr)
			}
			if tt.last != "" && lastLine(stdout) != tt.last {
				t.Errorf("last line %q, want %q\nstdout:\n%s", lastLine(stdout), tt.last, stdout)
			}
			if tt.jsonIDs != nil {
				v, ok := mustJSON(t, stdout).([]any)
				if !ok {
					t.Fatalf("stdout is not a JSON array:\n%s", stdout)
				}
				var ids []string
				for _, item := range v {
					ids = append(ids, item.(map[string]any)["id"].(string))
				}
				if !reflect.DeepEqual(ids, tt.jsonIDs) {
					t.Errorf("JSON ids %v, want %v", ids, tt.jsonIDs)
				}
			}
			if tt.jsonID != "" {
				v, ok := mustJSON(t, stdout).(map[string]any)
				if !ok || v["id"] != tt.jsonID {
					t.Errorf("stdout is not one JSON object with id %q:\n%s", tt.jsonID, stdout)
				}
			}
		})
	}
}

// TestUnreachable checks exit code 3 and the address in the message,
// through the real entry point.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()

	for _, args := range [][]string{
		{"agents"},
		{"isolate", "a1", "--reason", "x", "--wait"},
		{"--api", addr, "ca-pin"},
	} {
		var stdout, stderr bytes.Buffer
		env := func(k string) string {
			if k == "CORDON_API" {
				return addr
			}
			return ""
		}
		code := run(args, env, &stdout, &stderr)
		if code != exitUnreachable {
			t.Errorf("%v: exit code %d, want %d; stderr:\n%s", args, code, exitUnreachable, &stderr)
		}
		want := "cannot reach the API at " + addr + ": "
		if !strings.HasPrefix(stderr.String(), "cordonctl: ") || !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "connection refused") {
			t.Errorf("%v: stderr %q, want it to contain %q and connection refused", args, stderr.String(), want)
		}
	}
}

// TestWaitSurvivesRestart checks that --wait keeps polling while the API
// is briefly unreachable.
func TestWaitSurvivesRestart(t *testing.T) {
	f := newFakeAPI(t)
	f.dropCommandGETs = 4 // more than the transport's own retry
	code, stdout, stderr := f.runCLI(nil, "isolate", "a1", "--reason", "x", "--wait")
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "retrying") || !strings.Contains(stderr, "succeeded") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestPlaintextWarning(t *testing.T) {
	tests := []struct {
		api  string
		warn bool
	}{
		{"http://127.0.0.1:7480", false},
		{"http://localhost:7480", false},
		{"http://[::1]:7480", false},
		{"https://collector.example:7480", false},
		{"http://collector.example:7480", true},
		{"http://10.0.0.5:7480", true},
	}
	for _, tt := range tests {
		c, err := newClient(tt.api, "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.plaintextRemote(); got != tt.warn {
			t.Errorf("%s: plaintextRemote %v, want %v", tt.api, got, tt.warn)
		}
	}
}

func TestNewClientRejects(t *testing.T) {
	for _, api := range []string{"", "127.0.0.1:7480", "ftp://x", "http://", "http://x/?a=b", "http://u:p@x"} {
		if _, err := newClient(api, "", nil); err == nil {
			t.Errorf("newClient(%q) accepted", api)
		}
	}
	c, err := newClient("http://x:1/prefix/", "", nil)
	if err != nil || c.base != "http://x:1/prefix" {
		t.Errorf("base %q, %v", c.base, err)
	}
}
