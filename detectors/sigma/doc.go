// Package sigma compiles Sigma rules (https://sigmahq.io, specification
// v2) into detectors that run on Cordon's events.
//
// # What is supported
//
// Searches are maps (fields joined by AND), lists of maps (joined by OR)
// and keyword lists (field-less values, matched anywhere in the event's
// string fields). Values match case-insensitively unless the cased
// modifier is given, with the wildcards * and ? (escaped as \* and \?,
// and a literal backslash before them as \\). The modifiers are contains,
// startswith, endswith, all, re (with the i, m and s sub-modifiers;
// regular expressions use Go's RE2 syntax, which covers the flavour the
// specification allows), cidr, base64, base64offset, utf16le, utf16be,
// utf16, wide, windash, exists, gt, gte, lt, lte, neq, fieldref and
// cased. Conditions combine search identifiers with and, or, not and
// parentheses, and with "1 of X", "any of X" and "all of X", where X is
// an identifier, a pattern with * or "them" (every search whose name does
// not start with an underscore). A list of conditions is their OR.
//
// Correlation rules (a "correlation:" section, or the older "| count()"
// and "| near" aggregations in a condition), rule collections
// ("action: global"), placeholders (expand) and the time modifiers are
// refused with an error naming the file and line.
//
// # Where rules run
//
// Each rule is routed by its logsource to the events that can match it:
//
//	category process_creation, or product linux alone   process start events
//	category file_event                                  file creation and change events
//	category file_delete                                 file deletion events
//	category network_connection                          network connection events
//
// Other logsources (auditd, syslog, sshd, cron, ...) compile, so they can
// be checked, but no Cordon event reaches them; Rule.Routed says so.
//
// # Fields
//
// Sigma's field names map onto the ecs.Event as follows; every ECS name
// in the right column may also be used in a rule directly.
//
//	Image                process.executable
//	CommandLine          process.command_line
//	ParentImage          process.parent.executable
//	ParentCommandLine    process.parent.command_line
//	CurrentDirectory     process.working_directory
//	User                 process.user.name
//	LogonId              process.user.id (the uid; 0 is root)
//	ProcessId            process.pid
//	ParentProcessId      process.parent.pid
//	TargetFilename       file.path
//	DestinationIp        destination.ip
//	DestinationPort      destination.port
//	SourceIp             source.ip
//	SourcePort           source.port
//	Protocol             network.transport
//	Initiated            "true" for outbound (egress) connections, "false" for inbound
//
// DestinationHostname has no ECS counterpart in Cordon's events yet and
// never matches a value; a rule using a field that is not mapped compiles
// with a warning.
//
// # Speed
//
// A Set evaluates all its rules for one event together. Per event it
// looks at the event's route only, runs one Aho-Corasick pass over the
// route's fields to find the rules whose necessary literals occur, and
// evaluates only those rules. Field values are lower-cased once per event
// into a reused buffer, so the common path allocates nothing.
//
// # Findings
//
// A finding carries the rule's id, title, version (the modified date, or
// "1"), author, references and licence (the rule's own "license", else the
// default given when loading: the SigmaHQ rules are under the Detection
// Rule License 1.1). Severity comes from the level: informational and low
// give low, medium medium, high high, critical critical, and a rule
// without a level is medium. ATT&CK tactics and techniques come from the
// attack.* tags, with technique ids that moved in ATT&CK v19 rewritten to
// their new ids (see Techniques).
package sigma
