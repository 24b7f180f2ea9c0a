package agent

import (
	"encoding/json"
	"testing"
	"time"
)

// The state folder keeps a pushed set as one flat object, the version's
// fields beside the content's, as it always has: files written before
// still load, and files written now load in older agents.
func TestStoredSetLayout(t *testing.T) {
	old := `{"version":"1-aaaa","pushed_by":"alice","pushed_at":"2024-05-01T12:00:00Z","files":[{"name":"a.yml","content":"dGl0bGU6IHg="}]}`
	var st storedSet[storedRules]
	if err := json.Unmarshal([]byte(old), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "1-aaaa" || st.PushedBy != "alice" || !st.PushedAt.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) ||
		len(st.Content.Files) != 1 || st.Content.Files[0].Name != "a.yml" || string(st.Content.Files[0].Content) != "title: x" {
		t.Fatalf("decoded %+v", st)
	}
	b, err := json.Marshal(st)
	if err != nil || string(b) != old {
		t.Errorf("encoded %s, %v; want %s", b, err, old)
	}
	// No push time nor pusher: left out, as before.
	b, err = json.Marshal(storedSet[storedIocs]{setHeader: setHeader{Version: "2-bbbb"}})
	if err != nil || string(b) != `{"version":"2-bbbb","indicators":null}` {
		t.Errorf("encoded %s, %v", b, err)
	}
	b, err = json.Marshal(storedSet[struct{}]{setHeader: setHeader{Version: "3-cccc"}})
	if err != nil || string(b) != `{"version":"3-cccc"}` {
		t.Errorf("an empty content encoded %s, %v", b, err)
	}
	if _, err := json.Marshal(storedSet[[]int]{setHeader: setHeader{Version: "4"}, Content: []int{1}}); err == nil {
		t.Error("a content that is not an object encoded")
	}
}
