// Package stateful holds detectors that need more than one event: mass
// file modification (ransomware), port scans, process spawning bursts
// (fork bombs), periodic outbound connections (beaconing) and
// executables first seen after a learning period.
//
// Each is a detectors.Detector that keeps its state in memory, bounded in
// size, and reads time from the events (@timestamp), falling back to an
// injected clock for events without one; none does I/O. Like every
// detector they must not be called concurrently.
package stateful
