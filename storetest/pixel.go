package storetest

import (
	"errors"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/pixel"
)

func pixelTests() []test {
	return []test{
		{"Pixel/Sites", testPixelSites},
		{"Pixel/Events", testPixelEvents},
	}
}

func testPixelSites(e *env) {
	u := e.user("pix")
	a, b := e.workspace("pix-a", u.ID), e.workspace("pix-b", u.ID)
	if _, err := e.s.PixelSite(e.ctx, a.ID); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("PixelSite before any: %v, want not found", err)
	}
	site := pixel.DefaultSite(a.ID)
	site.SiteKey, site.SampleRate, site.Sessions = pixel.NewSiteKey(), 0.25, false
	site.CreatedAt, site.UpdatedAt = at(0), at(0)
	e.must(e.s.PutPixelSite(e.ctx, &site), "PutPixelSite")
	got, err := e.s.PixelSiteByKey(e.ctx, site.SiteKey)
	e.must(err, "PixelSiteByKey")
	if *got != site {
		e.t.Fatalf("round trip: %+v, want %+v", *got, site)
	}
	replaced := site
	replaced.Enabled, replaced.UpdatedAt, replaced.CreatedAt, replaced.SiteKey = false, at(time.Hour), at(time.Hour), pixel.NewSiteKey()
	e.must(e.s.PutPixelSite(e.ctx, &replaced), "PutPixelSite again")
	if got, _ = e.s.PixelSite(e.ctx, a.ID); got.Enabled || !got.UpdatedAt.Equal(at(time.Hour)) || !got.CreatedAt.Equal(at(0)) || got.SiteKey != site.SiteKey {
		e.t.Fatalf("after replace: %+v", got)
	}
	other := pixel.DefaultSite(b.ID)
	other.SiteKey = site.SiteKey
	if err := e.s.PutPixelSite(e.ctx, &other); !errors.Is(err, core.ErrConflict) {
		e.t.Fatalf("a site key taken by another workspace: %v, want conflict", err)
	}
	missing := pixel.DefaultSite(999_999)
	missing.SiteKey = pixel.NewSiteKey()
	if err := e.s.PutPixelSite(e.ctx, &missing); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("site of a missing workspace: %v, want not found", err)
	}
}

func testPixelEvents(e *env) {
	u := e.user("pev")
	a, b := e.workspace("pev-a", u.ID), e.workspace("pev-b", u.ID)
	for i, name := range []string{"pageview", "signup", "pageview"} {
		ev := &pixel.Event{WorkspaceID: a.ID, Event: name, URL: "https://example.com/" + name, CreatedAt: at(time.Duration(i) * time.Minute),
			Properties: map[string]any{"n": float64(i), "title": "T"}}
		e.must(e.s.CreatePixelEvent(e.ctx, ev), "CreatePixelEvent")
		if ev.ID == 0 {
			e.t.Fatal("no id set")
		}
	}
	e.must(e.s.CreatePixelEvent(e.ctx, &pixel.Event{WorkspaceID: b.ID, Event: "pageview"}), "CreatePixelEvent b")
	list, total, err := e.s.ListPixelEvents(e.ctx, a.ID, core.ListParams{Page: 1, PerPage: 10})
	e.must(err, "ListPixelEvents")
	if total != 3 || len(list) != 3 || list[0].Event != "pageview" || list[0].Properties["n"] != float64(2) || list[2].Properties["title"] != "T" {
		e.t.Fatalf("list: %d %+v, want 3 newest first with properties", total, list)
	}
	list, total, err = e.s.ListPixelEvents(e.ctx, a.ID, core.ListParams{Page: 1, PerPage: 10, Filter: core.Filter{Search: "SIGN"}})
	e.must(err, "search")
	if total != 1 || list[0].Event != "signup" {
		e.t.Fatalf("search: %d %+v", total, list)
	}
	if err := e.s.CreatePixelEvent(e.ctx, &pixel.Event{WorkspaceID: 999_999, Event: "x"}); !errors.Is(err, core.ErrNotFound) {
		e.t.Fatalf("event of a missing workspace: %v, want not found", err)
	}
}
