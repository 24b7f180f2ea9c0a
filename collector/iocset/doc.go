// Package iocset stores the indicator sets pushed to the fleet: each push
// is parsed and validated with the agent's own parser (detectors/ioc) and
// refused whole, with every line or STIX object at fault; a valid set is
// stored as a new version and becomes the current one, which the gateway
// delivers to every agent whose reported version differs.
//
// Keys: iocset/<seq> holds each version (indicators and who pushed it),
// meta/iocset-current the sequence number of the current one.
package iocset
