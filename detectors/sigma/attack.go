package sigma

import "strings"

// tactics maps ATT&CK tactic tags onto ids (ATT&CK v19, where Defense
// Evasion is split into Stealth, TA0005, and Defense Impairment, TA0112).
var tactics = map[string]string{
	"reconnaissance":       "TA0043",
	"resource-development": "TA0042",
	"initial-access":       "TA0001",
	"execution":            "TA0002",
	"persistence":          "TA0003",
	"privilege-escalation": "TA0004",
	"stealth":              "TA0005",
	"defense-evasion":      "TA0005", // the pre-v19 name; its id is Stealth's
	"defense-impairment":   "TA0112",
	"credential-access":    "TA0006",
	"discovery":            "TA0007",
	"lateral-movement":     "TA0008",
	"collection":           "TA0009",
	"command-and-control":  "TA0011",
	"exfiltration":         "TA0010",
	"impact":               "TA0040",
}

// TechniqueAliases maps technique ids that ATT&CK v19 moved onto their
// new ids, so that rules written against older versions yield current
// ids.
var TechniqueAliases = map[string]string{
	"T1562.001": "T1685",     // Impair Defenses: Disable or Modify Tools
	"T1562.003": "T1690",     // Impair Command History Logging (HISTFILE)
	"T1562.004": "T1686",     // Disable or Modify System Firewall
	"T1562.006": "T1685.006", // Indicator Blocking
	"T1562.012": "T1685.004", // Disable or Modify Linux Audit System
}

// Attack returns the ATT&CK tactic and technique ids of a rule's tags,
// in tag order, without duplicates.
func Attack(tags []string) (tacticIDs, techniqueIDs []string) {
	seen := map[string]bool{}
	for _, t := range tags {
		name, ok := strings.CutPrefix(strings.ToLower(t), "attack.")
		if !ok {
			continue
		}
		if len(name) > 1 && name[0] == 't' && name[1] >= '0' && name[1] <= '9' {
			id := strings.ToUpper(name)
			if n, ok := TechniqueAliases[id]; ok {
				id = n
			}
			if !seen[id] {
				seen[id] = true
				techniqueIDs = append(techniqueIDs, id)
			}
			continue
		}
		if id, ok := tactics[strings.ReplaceAll(name, "_", "-")]; ok && !seen[id] {
			seen[id] = true
			tacticIDs = append(tacticIDs, id)
		}
	}
	return tacticIDs, techniqueIDs
}
