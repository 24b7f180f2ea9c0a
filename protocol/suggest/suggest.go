// Package suggest finds the known name closest to a mistyped one, for
// "did you mean" hints in configuration and query errors.
package suggest

// Closest returns the name in known nearest to name, at most maxDist
// edits away (the first in sort order among equals), or "".
func Closest(name string, known []string, maxDist int) string {
	best, bestD := "", maxDist+1
	for _, k := range known {
		if d := Distance(name, k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the Levenshtein distance of a and b; names longer than 64
// bytes count as far from everything.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
