// Package coverage reads the Atomic Red Team Linux tests Cordon measures
// its detection against (testdata/linux-tests.json, with the files the
// tests use in testdata/src) and fills in their inputs. Its tests replay
// each test's process and file events through the agent's detection
// engine; the end-to-end suite (cmd/e2e) runs the same tests live against
// a real agent. See docs/detection-coverage.md for the figures.
package coverage
