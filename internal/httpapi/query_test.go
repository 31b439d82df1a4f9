package httpapi

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/revopsdev/revops/core"
)

type item struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func listCall(rawQuery string) (*Call, *API) {
	a := &API{cfg: Config{MaxBodyBytes: 1 << 20}, validate: newValidator()}
	rt := &Route{Sort: []string{"id", "name"}, Include: []string{"owner"}, Statuses: []string{"active"}, Search: true, list: true, fields: jsonFields(reflect.TypeFor[item]())}
	r := httptest.NewRequest("GET", "/x", nil)
	r.URL.RawQuery = rawQuery
	return &Call{R: r, Route: rt}, a
}

func TestParseListAcceptsAndRejects(t *testing.T) {
	good := map[string]func(core.ListParams, *Call) bool{
		"":                    func(p core.ListParams, _ *Call) bool { return p.Page == 1 && p.PerPage == 25 },
		"page=3&per_page=100": func(p core.ListParams, _ *Call) bool { return p.Page == 3 && p.PerPage == 100 },
		"sort=-name,id": func(p core.ListParams, _ *Call) bool {
			return len(p.Sort) == 2 && p.Sort[0] == core.Sort{Field: "name", Desc: true}
		},
		"status=active&search=%25x_":                 func(p core.ListParams, _ *Call) bool { return p.Filter.Status == "active" && p.Filter.Search == "%x_" },
		"created_after=2026-01-15":                   func(p core.ListParams, _ *Call) bool { return p.Filter.CreatedAfter.Day() == 15 },
		"updated_before=2026-01-15T10:30:00%2B02:00": func(p core.ListParams, _ *Call) bool { return p.Filter.UpdatedBefore.Hour() == 8 },
		"fields=id&include=owner": func(_ core.ListParams, c *Call) bool {
			return slices.Equal(c.fields, []string{"id"}) && c.Includes("owner")
		},
	}
	for q, check := range good {
		c, a := listCall(q)
		p, err := a.parseList(c.R, c)
		if err != nil || !check(p, c) {
			t.Errorf("%q: %+v %v", q, p, err)
		}
	}
	for _, q := range []string{"page=0", "page=-1", "page=x", "per_page=0", "per_page=101", "sort=secret", "sort=id,-id",
		"fields=password", "fields=", "include=all", "status=deleted", "created_after=soon", "search=" + url.QueryEscape(string(make([]byte, 300)))} {
		c, a := listCall(q)
		if _, err := a.parseList(c.R, c); err == nil {
			t.Errorf("%q accepted", q)
		} else if e := core.As(err); e.Code != core.CodeValidation || len(e.Fields) == 0 {
			t.Errorf("%q: %v", q, err)
		}
	}
}

func TestPageMetaAndLinks(t *testing.T) {
	m := pageMeta(core.ListParams{Page: 2, PerPage: 10}, 5, 15)
	if m.LastPage != 2 || *m.From != 11 || *m.To != 15 {
		t.Fatalf("%+v", m)
	}
	m = pageMeta(core.ListParams{Page: 9, PerPage: 10}, 0, 15)
	if m.From != nil || m.To != nil || m.LastPage != 2 {
		t.Fatalf("beyond the end: %+v", m)
	}
	m = pageMeta(core.ListParams{Page: 1, PerPage: 25}, 0, 0)
	if m.LastPage != 1 {
		t.Fatalf("empty: %+v", m)
	}
}

// FuzzParseList: no query string panics the parser, and whatever it accepts
// is within spec 001's bounds and the route's allow-lists.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "page=2&per_page=10", "sort=-name,id", "fields=id,name", "status=active", "search=%00", "page=9999999999999999999",
		"created_after=2026-01-01T00:00:00Z", "sort=,,,-", "per_page=1e2", "include=owner,owner"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := url.ParseQuery(raw); err != nil {
			return
		}
		c, a := listCall(raw)
		p, err := a.parseList(c.R, c)
		if err != nil {
			if e := core.As(err); e.Code != core.CodeValidation {
				t.Fatalf("%q: non-validation error %v", raw, err)
			}
			return
		}
		if p.Page < 1 || p.PerPage < 1 || p.PerPage > core.MaxPerPage {
			t.Fatalf("%q: accepted out-of-range %+v", raw, p)
		}
		for _, s := range p.Sort {
			if !slices.Contains(c.Route.Sort, s.Field) {
				t.Fatalf("%q: accepted sort %q", raw, s.Field)
			}
		}
		if p.Filter.Status != "" && p.Filter.Status != "active" {
			t.Fatalf("%q: accepted status %q", raw, p.Filter.Status)
		}
		for _, fl := range c.fields {
			if !c.Route.fields[fl] {
				t.Fatalf("%q: accepted field %q", raw, fl)
			}
		}
		_ = p.Offset()
	})
}

func TestValidRequestIDMatchesItsPattern(t *testing.T) {
	for _, s := range []string{"", "a", "req_123", "A-b.c:d_e", "bad id", "é", "x\n", strings.Repeat("a", 128), strings.Repeat("a", 129), "a/b", "a+b"} {
		if got, want := validRequestID(s), requestIDRE.MatchString(s); got != want {
			t.Errorf("validRequestID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
