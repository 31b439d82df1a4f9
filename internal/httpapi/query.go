package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
)

// parseShape reads fields= and include=, which every JSON GET accepts.
func (a *API) parseShape(r *http.Request, c *Call) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	var v core.Validation
	q := r.URL.Query()
	if q.Has("fields") {
		c.fields = splitList(q.Get("fields"))
		if len(c.fields) == 0 {
			v.Add("fields", "The fields must list at least one field.")
		}
		for _, f := range c.fields {
			if !c.Route.fields[f] {
				v.Add("fields", fmt.Sprintf("The field %q cannot be selected. Use: %s.", f, strings.Join(sortedKeys(c.Route.fields), ", ")))
			}
		}
	}
	if q.Has("include") {
		c.include = map[string]bool{}
		for _, inc := range splitList(q.Get("include")) {
			if !slices.Contains(c.Route.Include, inc) {
				v.Add("include", fmt.Sprintf("The include %q is not supported.%s", inc, oneOf(c.Route.Include)))
			}
			c.include[inc] = true
		}
	}
	return v.Err()
}

func oneOf(allowed []string) string {
	if len(allowed) == 0 {
		return " This resource supports none."
	}
	return " Use: " + strings.Join(allowed, ", ") + "."
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// maxPage keeps (page-1)×per_page far from overflowing any offset type.
const maxPage = 1 << 31 / core.MaxPerPage

// parseList validates spec 001's list parameters against the route's
// allow-lists. Any out-of-range or unknown value is a 422.
func (a *API) parseList(r *http.Request, c *Call) (core.ListParams, error) {
	p := core.ListParams{Page: 1, PerPage: core.DefaultPerPage}
	var v core.Validation
	if err := a.parseShape(r, c); err != nil {
		e := core.As(err)
		for f, ms := range e.Fields {
			for _, m := range ms {
				v.Add(f, m)
			}
		}
	}
	q := r.URL.Query()
	if q.Has("page") {
		n, err := strconv.Atoi(q.Get("page"))
		if err != nil || n < 1 || n > maxPage {
			v.Add("page", fmt.Sprintf("The page must be an integer between 1 and %d.", maxPage))
		}
		p.Page = n
	}
	if q.Has("per_page") {
		n, err := strconv.Atoi(q.Get("per_page"))
		if err != nil || n < 1 || n > core.MaxPerPage {
			v.Add("per_page", fmt.Sprintf("The per_page must be an integer between 1 and %d.", core.MaxPerPage))
		}
		p.PerPage = n
	}
	if q.Has("sort") {
		seen := map[string]bool{}
		items := splitList(q.Get("sort"))
		if len(items) == 0 {
			v.Add("sort", "The sort must name at least one field.")
		}
		for _, s := range items {
			f := strings.TrimPrefix(s, "-")
			switch {
			case !slices.Contains(c.Route.Sort, f):
				v.Add("sort", fmt.Sprintf("The sort field %q is not supported.%s", f, oneOf(c.Route.Sort)))
			case seen[f]:
				v.Add("sort", fmt.Sprintf("The sort field %q is listed twice.", f))
			}
			seen[f] = true
			p.Sort = append(p.Sort, core.Sort{Field: f, Desc: strings.HasPrefix(s, "-")})
		}
	}
	if q.Has("status") {
		st := q.Get("status")
		if !slices.Contains(c.Route.Statuses, st) {
			v.Add("status", fmt.Sprintf("The status %q is not supported.%s", st, oneOf(c.Route.Statuses)))
		}
		p.Filter.Status = st
	}
	if q.Has("search") {
		s := strings.TrimSpace(q.Get("search"))
		switch {
		case !c.Route.Search:
			v.Add("search", "This resource does not support search.")
		case utf8.RuneCountInString(s) > 255 || !utf8.ValidString(s) || strings.ContainsRune(s, 0):
			v.Add("search", "The search must be valid text of at most 255 characters.")
		}
		p.Filter.Search = s
	}
	for name, dst := range map[string]*time.Time{
		"created_after": &p.Filter.CreatedAfter, "created_before": &p.Filter.CreatedBefore,
		"updated_after": &p.Filter.UpdatedAfter, "updated_before": &p.Filter.UpdatedBefore,
	} {
		if !q.Has(name) {
			continue
		}
		t, err := parseDate(q.Get(name))
		if err != nil {
			v.Add(name, fmt.Sprintf("The %s must be an ISO 8601 date or date-time (e.g. 2026-01-15 or 2026-01-15T10:30:00Z).", name))
		}
		*dst = t
	}
	return p, v.Err()
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	return t.UTC(), err
}

// Meta is spec 001's list meta.
type Meta struct {
	CurrentPage int  `json:"current_page"`
	From        *int `json:"from"`
	LastPage    int  `json:"last_page"`
	PerPage     int  `json:"per_page"`
	To          *int `json:"to"`
	Total       int  `json:"total"`
}

// Links are spec 001's list links: absolute URLs as mounted, null where none.
type Links struct {
	First string  `json:"first"`
	Last  string  `json:"last"`
	Prev  *string `json:"prev"`
	Next  *string `json:"next"`
}

func pageMeta(p core.ListParams, n, total int) Meta {
	last := max(1, (total+p.PerPage-1)/p.PerPage)
	m := Meta{CurrentPage: p.Page, LastPage: last, PerPage: p.PerPage, Total: total}
	if n > 0 {
		from := (p.Page-1)*p.PerPage + 1
		to := from + n - 1
		m.From, m.To = &from, &to
	}
	return m
}

func (a *API) pageLinks(r *http.Request, m Meta) Links {
	base := a.requestURL(r)
	at := func(page int) string {
		u := *base
		q := u.Query()
		q.Set("page", strconv.Itoa(page))
		u.RawQuery = q.Encode()
		return u.String()
	}
	l := Links{First: at(1), Last: at(m.LastPage)}
	if m.CurrentPage > 1 {
		s := at(min(m.CurrentPage-1, m.LastPage))
		l.Prev = &s
	}
	if m.CurrentPage < m.LastPage {
		s := at(m.CurrentPage + 1)
		l.Next = &s
	}
	return l
}

// requestURL is the absolute URL the client asked for, mount prefix kept:
// RequestURI is untouched by http.StripPrefix.
func (a *API) requestURL(r *http.Request) *url.URL {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || r.RequestURI == "" {
		c := *r.URL
		u = &c
	}
	out := &url.URL{Scheme: "http", Host: r.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if r.TLS != nil {
		out.Scheme = "https"
	}
	if a.cfg.TrustForwardedProto {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			out.Scheme = p
		}
	}
	return out
}

// jsonFields lists the JSON member names of a struct type (after pointers).
func jsonFields(t reflect.Type) map[string]bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]bool{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous { // encoding/json flattens unexported embedded structs too
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			for k := range jsonFields(f.Type) {
				out[k] = true
			}
		case name == "":
			out[f.Name] = true
		default:
			out[name] = true
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
