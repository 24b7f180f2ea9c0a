// Package playbook holds the response playbooks of incident types: the
// checklist a handler works through and the automatic actions Cordon
// takes, with their conditions.
//
// A playbook is one YAML file:
//
//	type: ransomware          # the incident type it applies to
//	name: Ransomware response
//	dry_run: false            # true: actions are written on the timeline, not sent
//	steps:
//	  - id: scope
//	    title: List every affected host and share
//	actions:
//	  - id: isolate
//	    action: isolate        # isolate, kill, suspend, quarantine or collect
//	    reason: Stop encryption spreading
//	    when:
//	      criticality_below: high   # only hosts below this criticality
//	      min_priority: P2          # only incidents of this priority or higher
//	      drill: false              # drills too when true (default false)
//	    approval_from: critical     # hosts at or above this criticality wait for a responder
//
// Parse reports errors with the file name and line. Set holds the
// embedded defaults overridden, type by type, by a folder of files.
package playbook
