package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct {
		path, wantType, wantBody string
		want                     int
	}{
		{"/", "text/html", `<script type="module" src="/assets/app.js">`, 200},
		{"/assets/app.js", "text/javascript", "EventSource", 200},
		{"/assets/app.css", "text/css", ":root", 200},
		{"/assets/favicon.svg", "image/svg+xml", "<svg", 200},
		{"/assets/", "", "", 404},
		{"/assets/nothing.js", "", "", 404},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.path, resp.StatusCode, tt.want)
			continue
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP %q", tt.path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tt.path)
		}
		if tt.want == 200 && (!strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) || !strings.Contains(string(body), tt.wantBody)) {
			t.Errorf("%s: %s %.80q", tt.path, resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestNoInlineCode holds the console to its Content-Security-Policy: no
// inline scripts, styles or event handlers in the HTML, and no HTML built
// from strings in the scripts.
func TestNoInlineCode(t *testing.T) {
	entries, err := files.ReadDir("static/assets")
	if err != nil {
		t.Fatal(err)
	}
	index, _ := files.ReadFile("static/index.html")
	for _, bad := range []string{"<style", "style=", "onclick=", "onload=", "<script>", "javascript:"} {
		if strings.Contains(string(index), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, _ := files.ReadFile("static/assets/" + e.Name())
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", e.Name(), bad)
			}
		}
	}
}
