package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
)

type memStore struct{ events []audit.Event }

func (m *memStore) AppendAuditEvent(_ context.Context, e *audit.Event) error {
	e.ID = int64(len(m.events) + 1)
	m.events = append(m.events, *e)
	return nil
}

func (m *memStore) ListAuditEvents(context.Context, audit.Filter, core.ListParams) ([]audit.Event, int, error) {
	return m.events, len(m.events), nil
}

func TestParseFilters(t *testing.T) {
	for _, ok := range []string{"api_key.created", "api_key.*", "workspace.totp_policy_changed", "a.b.c"} {
		if err := audit.ParseActionFilter(ok); err != nil {
			t.Errorf("action %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".*", "*", "api_key", "API_KEY.created", "api_key.created;drop", "a..b", strings.Repeat("a", 70) + ".b"} {
		if err := audit.ParseActionFilter(bad); !errors.Is(err, core.ErrValidation) {
			t.Errorf("action %q: %v, want a validation error", bad, err)
		}
	}
	cases := map[string]struct {
		kind audit.ActorKind
		id   int64
	}{"user:12": {audit.ActorUser, 12}, "key:5": {audit.ActorKey, 5}, "system": {audit.ActorSystem, 0}, "anonymous": {audit.ActorAnonymous, 0}}
	for in, want := range cases {
		k, id, err := audit.ParseActorFilter(in)
		if err != nil || k != want.kind || id != want.id {
			t.Errorf("actor %q: %q %d %v, want %q %d", in, k, id, err, want.kind, want.id)
		}
	}
	for _, bad := range []string{"", "user", "user:", "user:0", "user:-1", "user:+1", "key:x", "system:1", "root:1"} {
		if _, _, err := audit.ParseActorFilter(bad); !errors.Is(err, core.ErrValidation) {
			t.Errorf("actor %q: %v, want a validation error", bad, err)
		}
	}
}

func TestRecordBoundsAndValidates(t *testing.T) {
	st := &memStore{}
	now := time.Date(2026, 1, 15, 10, 30, 0, 123456789, time.FixedZone("X", 3600))
	r, err := audit.NewRecorder(st, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Record(t.Context(), &audit.Event{Action: "Nope", Actor: audit.Actor{Kind: audit.ActorSystem}}); err == nil {
		t.Fatal("an invalid action was recorded")
	}
	if err := r.Record(t.Context(), &audit.Event{Action: audit.LoginFailed, Actor: audit.Actor{Kind: "robot"}}); err == nil {
		t.Fatal("an invalid actor kind was recorded")
	}
	e := &audit.Event{Action: audit.LoginFailed, Actor: audit.Actor{Kind: audit.ActorAnonymous},
		UserAgent: strings.Repeat("é", 400) + "\xff", TargetID: strings.Repeat("x", 300),
		Metadata: map[string]any{"big": strings.Repeat("y", 20<<10)}}
	if err := r.Record(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	got := st.events[0]
	if !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at %s, want now in UTC at microseconds", got.CreatedAt)
	}
	if len(got.UserAgent) > audit.MaxUserAgent || !strings.HasPrefix(got.UserAgent, "éé") || strings.Contains(got.UserAgent, "\xff") {
		t.Errorf("user agent not clipped on a rune boundary: %d bytes", len(got.UserAgent))
	}
	if len(got.TargetID) != audit.MaxText {
		t.Errorf("target id %d bytes, want %d", len(got.TargetID), audit.MaxText)
	}
	if got.Metadata["truncated"] != true {
		t.Errorf("oversized metadata kept: %d keys", len(got.Metadata))
	}
}
