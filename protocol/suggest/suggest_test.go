package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"paths", "path_max", "state", "process.name", "process.pid"}
	for _, tc := range []struct {
		name string
		max  int
		want string
	}{
		{"path", 2, "paths"}, // one edit; "path_max" is four away
		{"stat", 2, "state"}, // one edit
		{"proces.name", 3, "process.name"},
		{"process.nam", 1, "process.name"},
		{"completely", 3, ""}, // nothing near
		{"stte", 0, ""},       // exact matches only
		{"process.pix", 1, "process.pid"},
	} {
		if got := Closest(tc.name, known, tc.max); got != tc.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", tc.name, tc.max, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2},
		{string(make([]byte, 65)), "x", 64},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
