// Package query is Cordon's hunt filter language: a small boolean
// language over the normalized event's fields (protocol/ecs), such as
//
//	process.executable endswith "/xmrig" and user.name != "root"
//	destination.ip in 203.0.113.0/24 or file.hash.sha256 == "9f86…"
//
// The collector parses and validates a query before it sends a hunt, so a
// mistake is reported with its position once, and agents compile the same
// text into a matcher they run over their history and current state. The
// package is pure: no I/O, no clock.
//
// Grammar (keywords are case-insensitive, fields and values are not):
//
//	query   = or
//	or      = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | "(" or ")" | compare
//	compare = FIELD op value
//	op      = "==" | "!=" | "contains" | "startswith" | "endswith"
//	        | "matches" | "in" | ">" | ">=" | "<" | "<="
//	value   = STRING | WORD | "[" value { "," value } "]"
//
// STRING is double-quoted with Go escapes; WORD is an unquoted run of
// letters, digits and "._:/-@*+" (a number, an address, a CIDR). A
// comparison on a field the event does not have is false, whatever the
// operator: `not user.name == "root"` also matches events without a user.
package query
