// Package ruleset stores the rule sets pushed to the fleet: each push is
// compiled with the agent's own engine (detectors/rules) and refused
// whole, with every file and line at fault, when anything does not
// compile; a set that compiles is stored as a new version and becomes
// the current one, which the gateway delivers to every agent whose
// reported version differs.
//
// Keys: ruleset/<seq> holds each version (files and who pushed it),
// meta/ruleset-current the sequence number of the current one.
package ruleset
