// Package coverage measures which Atomic Red Team Linux tests Cordon's
// detectors flag, by replaying the process and file events each test's
// commands produce through the agent's detection engine. It holds only
// tests; see docs/detection-coverage.md for the figures.
package coverage
