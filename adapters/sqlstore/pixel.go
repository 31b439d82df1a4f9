package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/pixel"
)

var _ pixel.Store = (*Store)(nil)

type siteRow struct {
	WorkspaceID int64     `bun:"workspace_id"`
	SiteKey     string    `bun:"site_key"`
	Enabled     bool      `bun:"enabled"`
	Pageviews   bool      `bun:"pageviews"`
	Events      bool      `bun:"events"`
	Sessions    bool      `bun:"sessions"`
	SampleRate  float64   `bun:"sample_rate"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

const siteColumns = "workspace_id, site_key, enabled, pageviews, events, sessions, sample_rate, created_at, updated_at"

func (s *Store) pixelSite(ctx context.Context, where string, arg any) (*pixel.Site, error) {
	var rows []siteRow
	if err := s.db.NewRaw("SELECT "+siteColumns+" FROM revops_pixel_sites WHERE "+where, arg).Scan(ctx, &rows); err != nil {
		return nil, fail("get pixel site", err, "")
	}
	if len(rows) == 0 {
		return nil, core.NotFound()
	}
	r := rows[0]
	return &pixel.Site{WorkspaceID: r.WorkspaceID, SiteKey: r.SiteKey, Enabled: r.Enabled, Pageviews: r.Pageviews,
		Events: r.Events, Sessions: r.Sessions, SampleRate: r.SampleRate, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// PixelSite returns the workspace's pixel site.
func (s *Store) PixelSite(ctx context.Context, workspaceID int64) (*pixel.Site, error) {
	return s.pixelSite(ctx, "workspace_id = ?", workspaceID)
}

// PixelSiteByKey returns the site with this public key.
func (s *Store) PixelSiteByKey(ctx context.Context, siteKey string) (*pixel.Site, error) {
	return s.pixelSite(ctx, "site_key = ?", siteKey)
}

// PutPixelSite inserts the workspace's site, or replaces its settings
// (the site key and created_at of an existing site are kept).
func (s *Store) PutPixelSite(ctx context.Context, site *pixel.Site) error {
	site.CreatedAt, site.UpdatedAt = orNow(site.CreatedAt), orNow(site.UpdatedAt)
	_, err := s.db.ExecContext(ctx, `INSERT INTO revops_pixel_sites (`+siteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace_id) DO UPDATE SET enabled = EXCLUDED.enabled, pageviews = EXCLUDED.pageviews,
  events = EXCLUDED.events, sessions = EXCLUDED.sessions, sample_rate = EXCLUDED.sample_rate, updated_at = EXCLUDED.updated_at`,
		site.WorkspaceID, site.SiteKey, site.Enabled, site.Pageviews, site.Events, site.Sessions, site.SampleRate, site.CreatedAt, site.UpdatedAt)
	return fail("put pixel site", err, "This site key is in use.")
}

type eventRow struct {
	ID          int64     `bun:"id"`
	WorkspaceID int64     `bun:"workspace_id"`
	Event       string    `bun:"event"`
	URL         string    `bun:"url"`
	Referrer    string    `bun:"referrer"`
	UserAgent   string    `bun:"user_agent"`
	Properties  string    `bun:"properties"`
	CreatedAt   time.Time `bun:"created_at"`
}

// CreatePixelEvent stores e and sets its ID.
func (s *Store) CreatePixelEvent(ctx context.Context, e *pixel.Event) error {
	props := "{}"
	if len(e.Properties) > 0 {
		b, err := json.Marshal(e.Properties)
		if err != nil {
			return fmt.Errorf("sqlstore: create pixel event: properties: %w", err)
		}
		props = string(b)
	}
	e.CreatedAt = orNow(e.CreatedAt)
	err := s.db.NewRaw("INSERT INTO revops_pixel_events (workspace_id, event, url, referrer, user_agent, properties, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
		e.WorkspaceID, e.Event, e.URL, e.Referrer, e.UserAgent, props, e.CreatedAt).Scan(ctx, &e.ID)
	return fail("create pixel event", err, "")
}

var eventList = listSpec{
	columns:  "e.id, e.workspace_id, e.event, e.url, e.referrer, e.user_agent, e.properties, e.created_at",
	from:     "revops_pixel_events e",
	sorts:    map[string]string{"id": "e.id", "created_at": "e.created_at", "event": "e.event"},
	tieBreak: "e.id",
	search:   []string{"e.event", "e.url"},
	created:  "e.created_at",
}

// ListPixelEvents lists the workspace's events, newest first by default.
func (s *Store) ListPixelEvents(ctx context.Context, workspaceID int64, p core.ListParams) ([]pixel.Event, int, error) {
	var q listQuery
	q.add("e.workspace_id = ?", workspaceID)
	if p.Filter.Status != "" {
		return nil, 0, core.Invalid("status", "Events have no status.")
	}
	if err := eventList.applyFilter(&q, p.Filter); err != nil {
		return nil, 0, err
	}
	if len(p.Sort) == 0 {
		p.Sort = []core.Sort{{Field: "id", Desc: true}}
	}
	var rows []eventRow
	total, err := eventList.run(ctx, s.db, &q, p, &rows)
	if err != nil {
		return nil, 0, fail("list pixel events", err, "")
	}
	out := make([]pixel.Event, len(rows))
	for i, r := range rows {
		out[i] = pixel.Event{ID: r.ID, WorkspaceID: r.WorkspaceID, Event: r.Event, URL: r.URL, Referrer: r.Referrer,
			UserAgent: r.UserAgent, CreatedAt: r.CreatedAt.UTC()}
		if err := json.Unmarshal([]byte(r.Properties), &out[i].Properties); err != nil {
			return nil, 0, fmt.Errorf("sqlstore: pixel event %d: properties: %w", r.ID, err)
		}
	}
	return out, total, nil
}
