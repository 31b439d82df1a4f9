package revops_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestWorkspaceLifecycle(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)

	r := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Acme Corporation", "tier": "pro"}).must(t, 201)
	is.Equal(r.Body["message"], "Workspace created successfully.")
	is.Equal(r.str("slug"), "acme-corporation")
	is.Equal(r.str("tier"), "pro")
	is.Equal(r.data()["settings"], map[string]any{"timezone": "UTC", "locale": "en"})
	id := r.id()
	created := r.str("created_at")
	is.True(strings.HasSuffix(created, "Z"))

	// Same name again: a unique slug is derived.
	r2 := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Acme Corporation"}).must(t, 201)
	is.Equal(r2.str("slug"), "acme-corporation-2")
	is.Equal(r2.str("tier"), "free")

	g := e.do("GET", fmt.Sprintf("/workspaces/%d", id), e.key, nil).must(t, 200)
	is.Equal(g.str("name"), "Acme Corporation")
	is.Equal(g.Body["message"], nil)

	// PATCH merges settings key by key.
	p := e.do("PATCH", fmt.Sprintf("/workspaces/%d", id), e.key, map[string]any{"settings": map[string]any{"timezone": "Europe/London"}}).must(t, 200)
	is.Equal(p.Body["message"], "Workspace updated successfully.")
	is.Equal(p.data()["settings"], map[string]any{"timezone": "Europe/London", "locale": "en"})
	p = e.do("PUT", fmt.Sprintf("/workspaces/%d", id), e.key, map[string]any{"name": "Acme Ltd", "settings": map[string]any{"locale": "en_GB"}}).must(t, 200)
	is.Equal(p.str("name"), "Acme Ltd")
	is.Equal(p.data()["settings"], map[string]any{"timezone": "Europe/London", "locale": "en_GB"})

	// List shows what the principal can see, with spec 001 meta and links.
	l := e.do("GET", "/workspaces?per_page=2&sort=-id", e.key, nil).must(t, 200)
	is.Equal(len(l.list()), 2)
	meta := l.Body["meta"].(map[string]any)
	is.Equal(meta["total"], 3.0)
	is.Equal(meta["last_page"], 2.0)
	is.Equal(meta["from"], 1.0)
	is.Equal(meta["to"], 2.0)
	links := l.Body["links"].(map[string]any)
	is.Equal(links["prev"], nil)
	is.Equal(links["next"], e.srv.URL+"/api/v1/workspaces?page=2&per_page=2&sort=-id")
	is.Equal(links["first"], e.srv.URL+"/api/v1/workspaces?page=1&per_page=2&sort=-id")
	first := l.list()[0].(map[string]any)
	is.Equal(int64(first["id"].(float64)), r2.id())

	// A workspace key sees only its own workspace.
	wid, wkey := e.newWorkspace("Solo")
	l = e.do("GET", "/workspaces", wkey, nil).must(t, 200)
	is.Equal(len(l.list()), 1)
	is.Equal(int64(l.list()[0].(map[string]any)["id"].(float64)), wid)

	e.do("DELETE", fmt.Sprintf("/workspaces/%d", id), e.key, nil).must(t, 204)
	e.do("GET", fmt.Sprintf("/workspaces/%d", id), e.key, nil).must(t, 404, "not_found")
	e.do("DELETE", fmt.Sprintf("/workspaces/%d", id), e.key, nil).must(t, 404, "not_found")
	// Every response above was checked against /openapi.json.
	if n := e.oas.Validated(); n < 12 {
		t.Fatalf("only %d responses validated against the OpenAPI document", n)
	}
}

func TestWorkspaceDeleteStopsItsKeysAtOnce(t *testing.T) {
	e := newEnv(t)
	wid, wkey := e.newWorkspace("Doomed")
	e.do("GET", fmt.Sprintf("/workspaces/%d", wid), wkey, nil).must(t, 200) // now cached
	e.do("DELETE", fmt.Sprintf("/workspaces/%d", wid), e.key, nil).must(t, 204)
	e.do("GET", "/api-keys", wkey, nil).must(t, 401, "unauthorized")
}

func TestWorkspaceDeleteIsOwnerOnly(t *testing.T) {
	e := newEnv(t)
	u, ukey := e.newUser("admin2@example.com")
	if err := e.p.Workspaces().Store().AddMember(t.Context(), memberOf(e.ws.ID, u.ID, "admin")); err != nil {
		t.Fatal(err)
	}
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), ukey, nil).must(t, 200)
	r := e.do("DELETE", fmt.Sprintf("/workspaces/%d", e.ws.ID), ukey, nil).must(t, 403, "access_denied")
	if !strings.Contains(r.Body["message"].(string), "workspaces:delete") {
		t.Fatalf("message should name the scope: %s", r.Raw)
	}
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), e.key, nil).must(t, 200)
}

func TestWorkspaceValidation(t *testing.T) {
	e := newEnv(t)
	is := is.New(t)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
		msg    string
	}{
		{"missing name", map[string]any{}, 422, "name", "The name field is required."},
		{"blank name", map[string]any{"name": "   "}, 422, "name", "The name field is required."},
		{"long name", map[string]any{"name": strings.Repeat("x", 256)}, 422, "name", "The name may not be greater than 255 characters."},
		{"bad slug", map[string]any{"name": "x", "slug": "Bad Slug!"}, 422, "slug", ""},
		{"taken slug", map[string]any{"name": "x", "slug": "default"}, 422, "slug", "The slug has already been taken."},
		{"bad tier", map[string]any{"name": "x", "tier": "gold"}, 422, "tier", ""},
		{"bad timezone", map[string]any{"name": "x", "settings": map[string]any{"timezone": "Mars/Olympus"}}, 422, "settings.timezone", ""},
		{"Local timezone", map[string]any{"name": "x", "settings": map[string]any{"timezone": "Local"}}, 422, "settings.timezone", ""},
		{"bad locale", map[string]any{"name": "x", "settings": map[string]any{"locale": "english please"}}, 422, "settings.locale", ""},
		{"unknown field", map[string]any{"name": "x", "owner": 5}, 422, "owner", "The owner field is not allowed."},
		{"wrong type", map[string]any{"name": 42}, 422, "name", "The name must be a string."},
		{"wrong nested type", map[string]any{"name": "x", "settings": "UTC"}, 422, "settings", "The settings must be an object."},
		{"malformed JSON", `{"name": "x"`, 400, "", ""},
		{"trailing JSON", `{"name": "x"} {}`, 400, "", ""},
		{"array body", `[1,2]`, 400, "", ""},
		{"NUL in name", map[string]any{"name": "a\x00b"}, 422, "name", "The name must not contain NUL characters."},
		{"NUL in nested", map[string]any{"name": "x", "settings": map[string]any{"timezone": "UTC\x00"}}, 422, "settings.timezone", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/workspaces", e.key, c.body)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Raw)
			}
			if c.status == 422 {
				is.Equal(r.Body["error"], "validation_failed")
				is.Equal(r.Body["message"], "The given data was invalid.")
				got := r.fieldErr(c.field)
				if got == "" || (c.msg != "" && got != c.msg) {
					t.Fatalf("errors.%s = %q, want %q: %s", c.field, got, c.msg, r.Raw)
				}
			} else {
				is.Equal(r.Body["error"], "bad_request")
			}
		})
	}
	// Nothing was stored by any of them.
	l := e.do("GET", "/workspaces", e.key, nil).must(t, 200)
	is.Equal(l.Body["meta"].(map[string]any)["total"], 1.0)

	// Duplicate slug on update.
	other := e.do("POST", "/workspaces", e.key, map[string]any{"name": "Other"}).must(t, 201)
	r := e.do("PATCH", fmt.Sprintf("/workspaces/%d", other.id()), e.key, map[string]any{"slug": "default"}).must(t, 422, "validation_failed")
	is.Equal(r.fieldErr("slug"), "The slug has already been taken.")
	// Tier is not changed through the API (billing owns it).
	e.do("PATCH", fmt.Sprintf("/workspaces/%d", other.id()), e.key, map[string]any{"tier": "enterprise"}).must(t, 422, "validation_failed")
}

func TestBodyRules(t *testing.T) {
	e := newEnv(t, withMaxBody(1024))
	big := `{"name": "` + strings.Repeat("x", 2000) + `"}`
	e.do("POST", "/workspaces", e.key, big).must(t, 413, "payload_too_large")
	r := e.do("POST", "/workspaces", e.key, []byte(`{"name":"x"}`)) // octet-stream
	r.must(t, 415, "unsupported_media_type")
	e.do("POST", "/workspaces", e.key, `{"name":"x"}`, hdr{"Content-Type": "application/json; charset=utf-16"}).must(t, 415, "unsupported_media_type")
	e.do("POST", "/workspaces", e.key, `{"name":"utf8 ok"}`, hdr{"Content-Type": "application/json; charset=UTF-8"}).must(t, 201)
	// Bad ids in paths are not found, never 500.
	for _, p := range []string{"/workspaces/abc", "/workspaces/0", "/workspaces/-1", "/workspaces/99999999999999999999", "/workspaces/1.5", "/workspaces/+1"} {
		e.do("GET", p, e.key, nil).must(t, 404, "not_found")
	}
}

func TestListParameterErrors(t *testing.T) {
	e := newEnv(t)
	for q, field := range map[string]string{
		"page=0": "page", "page=abc": "page", "per_page=0": "per_page", "per_page=101": "per_page",
		"sort=password": "sort", "sort=name,name": "sort", "sort=": "sort", "fields=id,secret": "fields",
		"include=everything": "include", "status=active": "status", "created_after=yesterday": "created_after",
		"updated_before=2026-13-45": "updated_before", "page=9223372036854775807": "page", "search=a%00b": "search",
	} {
		r := e.do("GET", "/workspaces?"+q, e.key, nil)
		if r.Status != 422 || r.fieldErr(field) == "" {
			t.Errorf("%s: %d %s", q, r.Status, r.Raw)
		}
	}
	// And the good ones work.
	r := e.do("GET", "/workspaces?fields=id,name&include=owner&created_after=2020-01-01&search=def", e.key, nil).must(t, 200)
	item := r.list()[0].(map[string]any)
	if len(item) != 2 || item["name"] != "Default" {
		t.Fatalf("fields=id,name should keep only those: %v", item)
	}
	r = e.do("GET", fmt.Sprintf("/workspaces/%d?include=owner,members", e.ws.ID), e.key, nil).must(t, 200)
	owner := r.data()["owner"].(map[string]any)
	if owner["email"] != "admin@localhost" || len(r.data()["members"].([]any)) != 1 {
		t.Fatalf("includes: %s", r.Raw)
	}
	r = e.do("GET", "/workspaces?search=nomatch", e.key, nil).must(t, 200)
	if len(r.list()) != 0 || r.Body["meta"].(map[string]any)["from"] != nil {
		t.Fatalf("empty page: %s", r.Raw)
	}
}

func TestTOTPPolicy(t *testing.T) {
	e := newEnv(t)
	path := fmt.Sprintf("/workspaces/%d/totp-policy", e.ws.ID)
	wkey := e.do("POST", fmt.Sprintf("/workspaces/%d/api-keys", e.ws.ID), e.key, map[string]any{"name": "machine"}).must(t, 201).str("key")
	e.do("PUT", path, e.key, map[string]any{"policy": "sometimes"}).must(t, 422, "validation_failed")
	r := e.do("PUT", path, e.key, map[string]any{"policy": "required"}).must(t, 200)
	if r.str("policy") != "required" {
		t.Fatal(string(r.Raw))
	}
	// The owner has no two-factor authentication: from now on only machine
	// keys act here (TestTOTPWorkspacePolicyRequired has the rest).
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), e.key, nil).must(t, 403, "totp_enrollment_required")
	g := e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), wkey, nil).must(t, 200)
	if g.str("totp_policy") != "required" {
		t.Fatal(string(g.Raw))
	}
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)

func TestIcon(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	path := fmt.Sprintf("/workspaces/%d/icon", e.ws.ID)
	e.do("GET", path, e.key, nil).must(t, 404, "not_found")
	r := e.do("PUT", path, e.key, pngBytes).must(t, 200)
	is.Equal(r.str("content_type"), "image/png")
	etag := r.str("etag")

	g := e.do("GET", path, e.key, nil).must(t, 200)
	is.Equal(g.Header.Get("Content-Type"), "image/png")
	is.Equal(g.Header.Get("ETag"), etag)
	is.Equal(g.Raw, pngBytes)
	e.do("GET", path, e.key, nil, hdr{"If-None-Match": etag}).must(t, http.StatusNotModified)

	gif := []byte("GIF89a....")
	e.do("PUT", path, e.key, gif).must(t, 200)
	is.Equal(e.do("GET", path, e.key, nil).Header.Get("Content-Type"), "image/gif")

	e.do("PUT", path, e.key, []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")).must(t, 415, "unsupported_media_type")
	e.do("PUT", path, e.key, append(pngBytes, make([]byte, 256<<10)...)).must(t, 413, "payload_too_large")
	e.do("PUT", path, e.key, []byte{}).must(t, 422, "validation_failed")
	is.Equal(e.do("GET", path, e.key, nil).Header.Get("Content-Type"), "image/gif") // unchanged by the failures

	e.do("DELETE", path, e.key, nil).must(t, 204)
	e.do("GET", path, e.key, nil).must(t, 404, "not_found")
	e.do("DELETE", path, e.key, nil).must(t, 404, "not_found")
}
