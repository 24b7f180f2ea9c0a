package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/export"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/store"
)

type fakeExports struct{ replayed []string }

func (f *fakeExports) Status(context.Context) ([]export.SinkStatus, error) {
	return []export.SinkStatus{
		{Name: "soc", Type: "webhook", Target: "https://soc.example/hook", Format: "ocsf", Queued: 3, Dead: 1,
			DeliveredTotal: 10, FailedTotal: 4, DeadLetteredTotal: 1, LastError: "receiver answered 503"},
		{Name: "siem", Type: "syslog", Target: "tls://siem.example:6514", Format: "cef", DeliveredTotal: 7},
	}, nil
}

func (f *fakeExports) Replay(_ context.Context, sink string) (int, error) {
	if sink != "soc" {
		return 0, fmt.Errorf("%w: %q", export.ErrUnknownSink, sink)
	}
	f.replayed = append(f.replayed, sink)
	return 1, nil
}

func TestExports(t *testing.T) {
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := registry.New(registry.Config{DB: db}, quiet)
	fs, err := ingest.New(ingest.Config{DB: db, Agents: reg}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.New(auth.Config{DB: db}, quiet)
	secrets := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleResponder, auth.RoleAdmin} {
		_, s, err := keys.Create(context.Background(), string(r)+"-key", r)
		if err != nil {
			t.Fatal(err)
		}
		secrets[r] = s
	}
	fake := &fakeExports{}
	srv := httptest.NewServer(New(Config{
		Agents: reg, Findings: fs, Keys: keys, Commands: command.New(command.Config{DB: db}, quiet),
		Incidents: incident.New(incident.Config{DB: db, Log: fs, Findings: fs, Agents: reg}, quiet),
		Logger:    quiet, Exports: fake,
	}))
	t.Cleanup(srv.Close)
	call := func(method, path string, role auth.Role) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if role != "" {
			req.Header.Set("Authorization", "Bearer "+secrets[role])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := call("GET", "/api/v1/exports", auth.RoleViewer)
	var list struct {
		Items []map[string]any `json:"items"`
		Next  string           `json:"next"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Items) != 2 {
		t.Fatalf("GET /api/v1/exports: %d %s", code, body)
	}
	if it := list.Items[0]; it["queued"] != float64(3) || it["dead_lettered"] != float64(1) || it["delivered_total"] != float64(10) {
		t.Errorf("item %v", it)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "token") {
		t.Errorf("credentials in the listing: %s", body)
	}

	if code, _ := call("POST", "/api/v1/exports/soc/replay", auth.RoleResponder); code != http.StatusForbidden {
		t.Errorf("replay as responder: %d, want 403", code)
	}
	code, body = call("POST", "/api/v1/exports/soc/replay", auth.RoleAdmin)
	if code != 200 || !strings.Contains(body, `"replayed":1`) || len(fake.replayed) != 1 {
		t.Errorf("replay: %d %s", code, body)
	}
	code, body = call("POST", "/api/v1/exports/nope/replay", auth.RoleAdmin)
	if code != 404 || !strings.Contains(body, `"field":"sink"`) {
		t.Errorf("replay of an unknown sink: %d %s", code, body)
	}

	_, metrics := call("GET", "/metrics", "")
	for _, want := range []string{
		"# TYPE cordon_export_queue_depth gauge",
		`cordon_export_queue_depth{sink="soc",type="webhook"} 3`,
		`cordon_export_dead_letter_depth{sink="soc",type="webhook"} 1`,
		`cordon_export_delivered_total{sink="siem",type="syslog"} 7`,
		`cordon_export_failed_total{sink="soc",type="webhook"} 4`,
		`cordon_export_dead_lettered_total{sink="soc",type="webhook"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
