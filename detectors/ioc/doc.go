// Package ioc reads indicator sets (CSV or STIX 2.1 bundles) into
// normalized indicators and matches events against them.
//
// The collector parses every pushed file here and refuses it with the
// line (CSV) or the indicator object (STIX) at fault; agents receive the
// normalized indicators and match each event through a Matcher, a
// detectors.Batch of one rule whose lookups are map reads and a short
// list of CIDRs. The package does no I/O.
package ioc
