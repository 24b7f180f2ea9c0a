// Package actions carries out, on the agent's host, the commands the
// collector sends. This package holds the drill: a harmless simulation
// of an attack that the built-in detection rules flag, so that an
// operator can check the whole chain from sensor to incident without a
// real attack. Containment lives in its subpackages: isolation (the
// host's network), process (kill, suspend, resume) and quarantine
// (files).
//
// Every process a drill starts carries the drill's marker in its
// executable path or its command line, so the agent can recognise the
// findings it causes and mark them as drill findings.
package actions
