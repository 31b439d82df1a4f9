package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/apitest"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/scope"
)

// fakeAuth knows two workspace keys of workspace 1: "good" (every scope)
// and "weak" (read only).
type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, token string, _ time.Time) (*auth.Principal, error) {
	switch token {
	case "good":
		return &auth.Principal{Kind: auth.WorkspaceKey, KeyID: 1, WorkspaceID: 1, Scopes: scope.Set{"*"}}, nil
	case "weak":
		return &auth.Principal{Kind: auth.WorkspaceKey, KeyID: 2, WorkspaceID: 1, Scopes: scope.Set{"read"}}, nil
	}
	return nil, core.E(core.CodeUnauthorized, "Invalid or missing API key.")
}

func (fakeAuth) SoleWorkspace(context.Context, *auth.Principal) (int64, error) { return 0, nil }

func (fakeAuth) Access(_ context.Context, p *auth.Principal, workspaceID int64) (*auth.Access, error) {
	if workspaceID != 1 || p.WorkspaceID != 1 {
		return nil, core.NotFound()
	}
	return &auth.Access{Principal: p, WorkspaceID: workspaceID, Grant: scope.Grant{p.Scopes}}, nil
}

type (
	stamps struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	address struct {
		City string  `json:"city"`
		Zip  *string `json:"zip"`
	}
	ownerOut struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	widgetOut struct {
		stamps
		ID        int64          `json:"id"`
		Name      string         `json:"name"`
		Color     *string        `json:"color"`
		Tags      []string       `json:"tags"`
		Address   address        `json:"address"`
		Owner     *ownerOut      `json:"owner,omitempty"`
		Counts    map[string]int `json:"counts,omitempty"`
		Secret    string         `json:"-"`
		CreatedAt time.Time      `json:"created_at"`
		DeletedAt *time.Time     `json:"deleted_at"`
	}
	addressIn struct {
		City string `json:"city" validate:"required,max=80"`
	}
	createWidgetIn struct {
		Name    string        `json:"name" validate:"required,max=50"`
		Color   *string       `json:"color" validate:"omitempty,oneof=red green blue"`
		Tags    []string      `json:"tags" validate:"omitempty,max=5,dive,max=10"`
		Size    int           `json:"size" validate:"gte=0,lte=10"`
		Due     *httpapi.Time `json:"due"`
		Address *addressIn    `json:"address"`
	}
	patchWidgetIn struct {
		Name *string `json:"name" validate:"omitempty,max=50"`
	}
	pingOut struct {
		OK          bool  `json:"ok"`
		WorkspaceID int64 `json:"workspace_id"`
	}
	statusOut struct {
		Version string `json:"version"`
	}
)

func ptr[T any](v T) *T { return &v }

var (
	created = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	png     = []byte("\x89PNG\r\n\x1a\nfake")
)

func widget(id int64) *widgetOut {
	return &widgetOut{stamps: stamps{UpdatedAt: created}, ID: id, Name: "Widget", Color: ptr("red"), Tags: []string{"a"},
		Address: address{City: "Leeds"}, CreatedAt: created, Secret: "never sent"}
}

// newTestAPI registers a route of each kind. Widget 2 drifts: its nil Tags
// marshal as null where the document promises an array.
func newTestAPI(t *testing.T) *httpapi.API {
	t.Helper()
	a, err := httpapi.New(httpapi.Config{Auth: fakeAuth{}, Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	type Call = httpapi.Call
	type NoBody = httpapi.NoBody
	findWidget := func(c *Call) (*widgetOut, error) {
		id, err := c.PathID("widgetId")
		if err != nil || id > 2 {
			return nil, core.NotFound()
		}
		w := widget(id)
		if id == 2 {
			w.Tags = nil
		}
		if c.Includes("owner") {
			w.Owner = &ownerOut{ID: 7, Name: "Ann"}
		}
		return w, nil
	}

	httpapi.HandleList(a, httpapi.Route{Method: "GET", Path: "/widgets", Tag: "Widgets", Summary: "List widgets", Scope: "widgets:read",
		Tenant: httpapi.TenantContext, Sort: []string{"id", "name", "created_at"}, Include: []string{"owner"},
		Statuses: []string{"active", "archived"}, Search: true},
		func(ctx context.Context, c *Call, p core.ListParams) ([]*widgetOut, int, error) {
			if p.Page > 1 {
				return nil, 3, nil
			}
			return []*widgetOut{widget(1), widget(3), widget(4)}, 3, nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/widgets", Tag: "Widgets", Summary: "Create a widget", Scope: "widgets:write",
		Tenant: httpapi.TenantContext, Status: http.StatusCreated, Message: "Widget created successfully."},
		func(ctx context.Context, c *Call, in *createWidgetIn) (*widgetOut, error) {
			w := widget(9)
			w.Name, w.Color = in.Name, in.Color
			if in.Tags != nil {
				w.Tags = in.Tags
			}
			return w, nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/widgets/{widgetId}", Tag: "Widgets", Summary: "Get a widget", Scope: "widgets:read",
		Tenant: httpapi.TenantContext, Include: []string{"owner"}},
		func(ctx context.Context, c *Call, _ *NoBody) (*widgetOut, error) { return findWidget(c) })
	httpapi.Handle(a, httpapi.Route{Method: "PATCH", Path: "/widgets/{widgetId}", Tag: "Widgets", Summary: "Update a widget", Scope: "widgets:write",
		Tenant: httpapi.TenantContext, Message: "Widget updated successfully."},
		func(ctx context.Context, c *Call, in *patchWidgetIn) (*widgetOut, error) {
			w, err := findWidget(c)
			if err == nil && in.Name != nil {
				w.Name = *in.Name
			}
			return w, err
		})
	httpapi.Handle(a, httpapi.Route{Method: "DELETE", Path: "/widgets/{widgetId}", Tag: "Widgets", Summary: "Delete a widget", Scope: "widgets:delete",
		Tenant: httpapi.TenantContext, Status: http.StatusNoContent},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) {
			_, err := findWidget(c)
			return NoBody{}, err
		})
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/ping", Tag: "Workspaces", Summary: "Ping a workspace", Scope: "workspaces:read",
		Tenant: httpapi.TenantPath, Bare: true},
		func(ctx context.Context, c *Call, _ *NoBody) (pingOut, error) {
			return pingOut{OK: true, WorkspaceID: c.WorkspaceID()}, nil
		})
	httpapi.HandleRaw(a, httpapi.Route{Method: "GET", Path: "/workspaces/{id}/logo", Tag: "Workspaces", Summary: "Get the logo", Scope: "workspaces:read",
		Tenant: httpapi.TenantPath, RawResponse: []string{"image/png", "image/gif"}},
		func(w http.ResponseWriter, r *http.Request, c *Call) error {
			w.Header().Set("ETag", `"v1"`)
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return nil
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
			return nil
		})
	httpapi.HandleRaw(a, httpapi.Route{Method: "PUT", Path: "/workspaces/{id}/logo", Tag: "Workspaces", Summary: "Upload the logo", Scope: "workspaces:write",
		Tenant: httpapi.TenantPath, Message: "Logo updated successfully.", RawBody: []string{"image/png"}},
		func(w http.ResponseWriter, r *http.Request, c *Call) error {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(b, []byte("\x89PNG")) {
				return core.E(core.CodeUnsupportedMedia, "The logo must be a PNG image.")
			}
			httpapi.WriteJSON(w, http.StatusOK, map[string]any{"message": c.Route.Message, "data": map[string]any{"size": len(b)}})
			return nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/status", Tag: "Meta", Summary: "Service status", Public: true, Bare: true},
		func(ctx context.Context, c *Call, _ *NoBody) (statusOut, error) {
			return statusOut{Version: "1.2.3"}, nil
		})
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/boom", Summary: "Always fails", Scope: "widgets:read"},
		func(ctx context.Context, c *Call, _ *NoBody) (NoBody, error) { panic("boom") })
	return a
}

func docJSON(t *testing.T, a *httpapi.API) []byte {
	t.Helper()
	b, err := json.MarshalIndent(a.OpenAPI("Test API", "1.0.0"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dig walks a decoded JSON document.
func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				t.Fatalf("no %q in %v (path %v)", p, keys(x), path)
			}
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				t.Fatalf("bad index %q (path %v)", p, path)
			}
			v = x[i]
		default:
			t.Fatalf("cannot descend into %T at %q (path %v)", v, p, path)
		}
	}
	return v
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func strs(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// paramsOf maps an operation's parameters by name, components resolved.
func paramsOf(t *testing.T, doc map[string]any, op map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	ps, _ := op["parameters"].([]any)
	for _, p := range ps {
		m := p.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			m = dig(t, doc, "components", "parameters", strings.TrimPrefix(ref, "#/components/parameters/")).(map[string]any)
		}
		out[m["name"].(string)] = m
	}
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	a := newTestAPI(t)
	raw := docJSON(t, a)
	if again := docJSON(t, a); !bytes.Equal(raw, again) {
		t.Fatal("the document is not deterministic")
	}
	loader := openapi3.NewLoader()
	kdoc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := kdoc.Validate(loader.Context); err != nil {
		t.Fatalf("invalid document: %v\n%s", err, raw)
	}
	if kdoc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", kdoc.OpenAPI)
	}

	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	op := func(path, method string) map[string]any {
		return dig(t, doc, "paths", path, method).(map[string]any)
	}

	// Security: bearer on protected routes with the scope, none on public ones.
	if got := dig(t, doc, "components", "securitySchemes", "bearerAuth", "scheme"); got != "bearer" {
		t.Errorf("bearerAuth scheme %v", got)
	}
	create := op("/widgets", "post")
	if got := dig(t, create, "security", "0", "bearerAuth"); len(got.([]any)) != 0 {
		t.Errorf("security %v", got)
	}
	if create["x-required-scope"] != "widgets:write" || !strings.Contains(create["description"].(string), "Required scope: widgets:write") {
		t.Errorf("scope not documented: %v / %v", create["x-required-scope"], create["description"])
	}
	status := op("/status", "get")
	if sec, ok := status["security"].([]any); !ok || len(sec) != 0 {
		t.Errorf("public route security %v", status["security"])
	}
	if _, ok := status["x-required-scope"]; ok {
		t.Error("public route has a scope")
	}
	if _, ok := dig(t, status, "responses").(map[string]any)["401"]; ok {
		t.Error("public route documents 401")
	}
	if kdoc.Paths.Find("/status").Get.Security == nil || len(*kdoc.Paths.Find("/status").Get.Security) != 0 {
		t.Error("kin-openapi does not see security: [] on the public route")
	}

	// Unique operation ids.
	ids := map[string]bool{}
	for path, item := range kdoc.Paths.Map() {
		for method, o := range item.Operations() {
			if o.OperationID == "" || ids[o.OperationID] {
				t.Errorf("%s %s: operationId %q empty or duplicated", method, path, o.OperationID)
			}
			ids[o.OperationID] = true
		}
	}
	if !ids["getWidgetsByWidgetId"] || !ids["getWorkspacesByIdPing"] {
		t.Errorf("operation ids: %v", ids)
	}

	// List parameters.
	list := paramsOf(t, doc, op("/widgets", "get"))
	for _, name := range []string{"page", "per_page", "sort", "fields", "include", "status", "created_after", "created_before", "updated_after", "updated_before", "search", "X-Workspace-ID"} {
		if list[name] == nil {
			t.Errorf("list lacks parameter %s (has %v)", name, slices.Collect(func(yield func(string) bool) {
				for k := range list {
					if !yield(k) {
						return
					}
				}
			}))
		}
	}
	if dig(t, list["page"], "schema", "default") != 1.0 || dig(t, list["per_page"], "schema", "maximum") != 100.0 || dig(t, list["per_page"], "schema", "default") != 25.0 {
		t.Errorf("page/per_page: %v %v", list["page"], list["per_page"])
	}
	if got := strs(dig(t, list["status"], "schema", "enum")); !slices.Equal(got, []string{"active", "archived"}) {
		t.Errorf("status enum %v", got)
	}
	if d := list["sort"]["description"].(string); !strings.Contains(d, "id, name, created_at") || !strings.Contains(d, "-") {
		t.Errorf("sort description %q", d)
	}
	if d := list["fields"]["description"].(string); !strings.Contains(d, "partial") || !strings.Contains(d, "deleted_at") {
		t.Errorf("fields description %q", d)
	}
	if list["X-Workspace-ID"]["in"] != "header" || list["X-Workspace-ID"]["required"] == true {
		t.Errorf("X-Workspace-ID %v", list["X-Workspace-ID"])
	}
	// Non-list GETs: fields, and include only where allowed; path params.
	get := paramsOf(t, doc, op("/widgets/{widgetId}", "get"))
	if get["fields"] == nil || get["include"] == nil || get["page"] != nil {
		t.Errorf("get parameters %v", get)
	}
	if get["widgetId"]["in"] != "path" || get["widgetId"]["required"] != true || dig(t, get["widgetId"], "schema", "minimum") != 1.0 {
		t.Errorf("path parameter %v", get["widgetId"])
	}
	ping := paramsOf(t, doc, op("/workspaces/{id}/ping", "get"))
	if ping["include"] != nil || ping["fields"] == nil || ping["X-Workspace-ID"] != nil || ping["id"] == nil {
		t.Errorf("ping parameters %v", ping)
	}

	// Request bodies.
	if dig(t, create, "requestBody", "required") != true {
		t.Error("create body with a required field must be required")
	}
	if dig(t, op("/widgets/{widgetId}", "patch"), "requestBody", "required") != false {
		t.Error("patch body without required fields must be optional")
	}
	if _, ok := op("/widgets/{widgetId}", "delete")["requestBody"]; ok {
		t.Error("NoBody route has a request body")
	}
	in := dig(t, doc, "components", "schemas", "CreateWidgetIn").(map[string]any)
	if in["additionalProperties"] != false || !slices.Equal(strs(in["required"]), []string{"name"}) {
		t.Errorf("CreateWidgetIn: additionalProperties %v required %v", in["additionalProperties"], in["required"])
	}
	if dig(t, in, "properties", "name", "maxLength") != 50.0 || dig(t, in, "properties", "name", "minLength") != 1.0 {
		t.Errorf("name %v", dig(t, in, "properties", "name"))
	}
	color := dig(t, in, "properties", "color").(map[string]any)
	if !slices.Equal(strs(color["type"]), []string{"string", "null"}) || !slices.Equal(strs(color["enum"]), []string{"red", "green", "blue", "<nil>"}) {
		t.Errorf("color %v", color)
	}
	if dig(t, in, "properties", "tags", "maxItems") != 5.0 || dig(t, in, "properties", "tags", "items", "maxLength") != 10.0 {
		t.Errorf("tags %v", dig(t, in, "properties", "tags"))
	}
	if dig(t, in, "properties", "size", "minimum") != 0.0 || dig(t, in, "properties", "size", "maximum") != 10.0 {
		t.Errorf("size %v", dig(t, in, "properties", "size"))
	}
	if dig(t, in, "properties", "due", "format") != "date-time" || !slices.Equal(strs(dig(t, in, "properties", "due", "type")), []string{"string", "null"}) {
		t.Errorf("due %v", dig(t, in, "properties", "due"))
	}
	if dig(t, in, "properties", "address", "oneOf", "0", "$ref") != "#/components/schemas/AddressIn" {
		t.Errorf("address %v", dig(t, in, "properties", "address"))
	}
	if dig(t, doc, "components", "schemas", "AddressIn", "additionalProperties") != false {
		t.Error("nested request objects must reject unknown members")
	}
	logoBody := dig(t, op("/workspaces/{id}/logo", "put"), "requestBody", "content", "image/png", "schema").(map[string]any)
	if logoBody["contentMediaType"] != "image/png" || logoBody["type"] != "string" {
		t.Errorf("raw body %v", logoBody)
	}

	// Response schemas.
	out := dig(t, doc, "components", "schemas", "WidgetOut").(map[string]any)
	req := strs(out["required"])
	for _, name := range []string{"id", "name", "color", "tags", "address", "created_at", "deleted_at", "updated_at"} {
		if !slices.Contains(req, name) {
			t.Errorf("WidgetOut: %s not required (%v)", name, req)
		}
	}
	for _, name := range []string{"owner", "counts"} {
		if slices.Contains(req, name) {
			t.Errorf("WidgetOut: omitempty %s required", name)
		}
	}
	props := out["properties"].(map[string]any)
	if _, ok := props["Secret"]; ok {
		t.Error(`json:"-" field documented`)
	}
	if out["additionalProperties"] != false {
		t.Error("response objects must not allow unknown members")
	}
	if !slices.Equal(strs(dig(t, props, "deleted_at", "type")), []string{"string", "null"}) {
		t.Errorf("deleted_at %v", props["deleted_at"])
	}
	if dig(t, props, "owner", "oneOf", "1", "type") != "null" {
		t.Errorf("owner %v", props["owner"])
	}
	if dig(t, props, "counts", "additionalProperties", "type") != "integer" {
		t.Errorf("counts %v", props["counts"])
	}
	created := dig(t, create, "responses", "201", "content", "application/json", "schema").(map[string]any)
	if !slices.Equal(strs(created["required"]), []string{"message", "data"}) || dig(t, created, "properties", "message", "const") != "Widget created successfully." {
		t.Errorf("create envelope %v", created)
	}
	listEnv := dig(t, op("/widgets", "get"), "responses", "200", "content", "application/json", "schema").(map[string]any)
	if dig(t, listEnv, "properties", "meta", "$ref") != "#/components/schemas/Meta" || dig(t, listEnv, "properties", "links", "$ref") != "#/components/schemas/Links" {
		t.Errorf("list envelope %v", listEnv)
	}
	if !slices.Equal(strs(dig(t, doc, "components", "schemas", "Links", "properties", "prev", "type")), []string{"string", "null"}) {
		t.Error("links.prev must be nullable")
	}
	if _, ok := dig(t, op("/widgets/{widgetId}", "delete"), "responses", "204").(map[string]any)["content"]; ok {
		t.Error("204 has content")
	}
	if dig(t, op("/workspaces/{id}/ping", "get"), "responses", "200", "content", "application/json", "schema", "$ref") != "#/components/schemas/PingOut" {
		t.Error("bare route is not its Out")
	}
	logo := dig(t, op("/workspaces/{id}/logo", "get"), "responses").(map[string]any)
	if _, ok := logo["304"]; !ok || dig(t, logo, "200", "content", "image/gif", "schema", "contentMediaType") != "image/gif" {
		t.Errorf("raw response %v", logo)
	}
	for _, code := range []string{"400", "401", "403", "404", "422", "429", "500", "default"} {
		if _, ok := dig(t, create, "responses").(map[string]any)[code]; !ok {
			t.Errorf("create lacks response %s", code)
		}
	}
	if got := strs(dig(t, doc, "components", "schemas", "Error", "required")); !slices.Equal(got, []string{"error", "message"}) {
		t.Errorf("Error required %v", got)
	}
}

// Servers and MountPrefix: the served document can name its own mount.
func TestOpenAPIServersAndMountPrefix(t *testing.T) {
	a := newTestAPI(t)
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/openapi.json", Public: true, Bare: true},
		func(ctx context.Context, c *httpapi.Call, _ *httpapi.NoBody) (any, error) {
			return a.OpenAPI("Test API", "1.0.0", httpapi.MountPrefix(c.R)), nil
		})
	for _, mount := range []struct{ pattern, strip, want string }{{"/", "", "/"}, {"/api/v1/", "/api/v1", "/api/v1"}, {"/deep/api/", "/deep/api/", "/deep/api"}} {
		mux := http.NewServeMux()
		var h http.Handler = a
		if mount.strip != "" {
			h = http.StripPrefix(mount.strip, a)
		}
		mux.Handle(mount.pattern, h)
		srv := httptest.NewServer(mux)
		res, err := http.Get(srv.URL + mount.pattern + "openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Servers []struct{ URL string } `json:"servers"`
		}
		json.NewDecoder(res.Body).Decode(&doc)
		res.Body.Close()
		srv.Close()
		if len(doc.Servers) != 1 || doc.Servers[0].URL != mount.want {
			t.Errorf("%s: servers %+v, want %s", mount.pattern, doc.Servers, mount.want)
		}
	}
}

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

type call struct {
	method, path, token string
	body                string
	header              map[string]string
	want                int
	drift               bool // the response is expected to violate the document
}

// Real calls of every kind, validated against the document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	a := newTestAPI(t)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", a))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	rec := &recorder{TB: t}
	v := apitest.NewValidator(rec, docJSON(t, a), "/api/v1")
	client := &http.Client{Transport: v.Transport(nil)}

	js := map[string]string{"Content-Type": "application/json"}
	calls := []call{
		{method: "GET", path: "/widgets", token: "good", want: 200},
		{method: "GET", path: "/widgets?page=2&per_page=2&sort=-created_at,name&status=active&search=x&created_after=2026-01-01&include=owner", token: "good", want: 200},
		{method: "GET", path: "/widgets?fields=id,name", token: "good", want: 200},
		{method: "GET", path: "/widgets?per_page=500&sort=color", token: "good", want: 422},
		{method: "POST", path: "/widgets", token: "good", body: `{"name":"W","color":"blue","tags":["x"],"due":"2026-02-01T00:00:00Z","address":{"city":"York"}}`, header: js, want: 201},
		{method: "POST", path: "/widgets", token: "good", body: `{"name":"","size":11,"extra":1}`, header: js, want: 422},
		{method: "POST", path: "/widgets", token: "good", body: `{"name":`, header: js, want: 400},
		{method: "POST", path: "/widgets", token: "good", body: `{"name":"W"}`, header: map[string]string{"Content-Type": "text/plain"}, want: 415},
		{method: "POST", path: "/widgets", token: "good", body: `{"name":"` + strings.Repeat("x", 5000) + `"}`, header: js, want: 413},
		{method: "POST", path: "/widgets", token: "weak", body: `{"name":"W"}`, header: js, want: 403},
		{method: "POST", path: "/widgets", body: `{"name":"W"}`, header: js, want: 401},
		{method: "GET", path: "/widgets", token: "bad", want: 401},
		{method: "GET", path: "/widgets", token: "good", header: map[string]string{"X-Workspace-ID": "x"}, want: 400},
		{method: "GET", path: "/widgets", token: "good", header: map[string]string{"X-Workspace-ID": "9"}, want: 404},
		{method: "GET", path: "/widgets/1?include=owner", token: "good", want: 200},
		{method: "GET", path: "/widgets/1?fields=id", token: "good", want: 200},
		{method: "GET", path: "/widgets/99", token: "good", want: 404},
		{method: "GET", path: "/widgets/2", token: "good", want: 200, drift: true},
		{method: "PATCH", path: "/widgets/1", token: "good", want: 200},
		{method: "PATCH", path: "/widgets/1", token: "good", body: `{"name":"New"}`, header: js, want: 200},
		{method: "DELETE", path: "/widgets/1", token: "good", want: 204},
		{method: "DELETE", path: "/widgets/99", token: "good", want: 404},
		{method: "GET", path: "/workspaces/1/ping", token: "good", want: 200},
		{method: "GET", path: "/workspaces/2/ping", token: "good", want: 404},
		{method: "GET", path: "/workspaces/1/logo", token: "good", want: 200},
		{method: "GET", path: "/workspaces/1/logo", token: "good", header: map[string]string{"If-None-Match": `"v1"`}, want: 304},
		{method: "PUT", path: "/workspaces/1/logo", token: "good", body: string(png), header: map[string]string{"Content-Type": "image/png"}, want: 200},
		{method: "PUT", path: "/workspaces/1/logo", token: "good", body: "GIF89a", header: map[string]string{"Content-Type": "image/png"}, want: 415},
		{method: "GET", path: "/status", want: 200},
		{method: "GET", path: "/boom", token: "good", want: 500},
		// Undocumented: skipped, not failed.
		{method: "GET", path: "/nothing/here", token: "good", want: 404},
		{method: "PUT", path: "/widgets", token: "good", want: 405},
		{method: "HEAD", path: "/widgets/1", token: "good", want: 200},
	}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, srv.URL+"/api/v1"+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		for k, val := range c.header {
			req.Header.Set(k, val)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, res.StatusCode, c.want, body)
		}
		errs := rec.take()
		switch {
		case c.drift && len(errs) == 0:
			t.Errorf("%s %s: drift not reported (%s)", c.method, c.path, body)
		case c.drift && !strings.Contains(strings.Join(errs, "\n"), "tags"):
			t.Errorf("%s %s: drift reported without naming tags: %v", c.method, c.path, errs)
		case !c.drift:
			for _, e := range errs {
				t.Errorf("%s %s: %s", c.method, c.path, e)
			}
		}
	}
	// Every documented call was validated; the three undocumented were not.
	if got, want := v.Validated(), len(calls)-3; got != want {
		t.Errorf("validated %d responses, want %d", got, want)
	}
}

type fakeRT func(*http.Request) *http.Response

func (f fakeRT) RoundTrip(r *http.Request) (*http.Response, error) { return f(r), nil }

// The validator reports hand-built responses that break the document.
func TestValidatorReportsMismatches(t *testing.T) {
	a := newTestAPI(t)
	rec := &recorder{TB: t}
	v := apitest.NewValidator(rec, docJSON(t, a), "/api/v1")
	good := `{"data":{"id":1,"name":"W","color":null,"tags":[],"address":{"city":"X","zip":null},"created_at":"2026-01-15T10:30:00Z","deleted_at":null,"updated_at":"2026-01-15T10:30:00Z"}}`
	ctHdr := func(ct string) http.Header {
		h := http.Header{}
		h.Set("X-Request-ID", "req_1")
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		return h
	}
	jsonHdr := func(reqID bool) http.Header {
		h := ctHdr("application/json")
		if !reqID {
			h.Del("X-Request-ID")
		}
		return h
	}
	for _, c := range []struct {
		name   string
		path   string
		status int
		header http.Header
		body   string
		want   string // in the report; "" when none is expected
	}{
		{"matching", "/widgets/1", 200, jsonHdr(true), good, ""},
		{"wrong type", "/widgets/1", 200, jsonHdr(true), strings.Replace(good, `"id":1`, `"id":"one"`, 1), "/data/id"},
		{"unknown member", "/widgets/1", 200, jsonHdr(true), strings.Replace(good, `"id":1`, `"id":1,"extra":true`, 1), "extra"},
		{"missing member", "/widgets/1", 200, jsonHdr(true), strings.Replace(good, `"name":"W",`, ``, 1), "/data/name"},
		{"null array", "/widgets/1", 200, jsonHdr(true), strings.Replace(good, `"tags":[]`, `"tags":null`, 1), "/data/tags"},
		{"bad date-time", "/widgets/1", 200, jsonHdr(true), strings.Replace(good, `"created_at":"2026-01-15T10:30:00Z"`, `"created_at":"yesterday"`, 1), "/data/created_at"},
		{"no envelope", "/widgets/1", 200, jsonHdr(true), `{"id":1}`, "/data"},
		{"no request id", "/widgets/1", 200, jsonHdr(false), good, "X-Request-ID"},
		{"not json", "/widgets/1", 200, ctHdr("text/html"), "<html>", "text/html"},
		{"undocumented success status", "/widgets/1", 201, jsonHdr(true), good, "schemas/Error"},
		{"error without code", "/widgets/1", 404, jsonHdr(true), `{"message":"gone"}`, "'error'"},
		{"404 with another code", "/widgets/1", 404, jsonHdr(true), `{"error":"conflict","message":"x"}`, "/error"},
		{"401 without WWW-Authenticate", "/widgets/1", 401, jsonHdr(true), `{"error":"unauthorized","message":"x"}`, "WWW-Authenticate"},
		{"500 without request_id", "/widgets/1", 500, jsonHdr(true), `{"error":"server_error","message":"An unexpected error occurred."}`, "request_id"},
		{"create without message", "/widgets", 201, jsonHdr(true), good, "'message'"},
		{"list without meta", "/widgets", 200, jsonHdr(true), `{"data":[],"links":{"first":"a","last":"b","prev":null,"next":null}}`, "/meta"},
		{"error with extra members", "/widgets/1", 429, jsonHdr(true), `{"error":"rate_limit_exceeded","message":"slow down","retry_after":3}`, ""},
		{"bad rate-limit header", "/widgets/1", 429, func() http.Header {
			h := jsonHdr(true)
			h.Set("X-RateLimit-Remaining", "lots")
			return h
		}(), `{"error":"rate_limit_exceeded","message":"slow down"}`, "X-RateLimit-Remaining"},
		{"image with the wrong type", "/workspaces/1/logo", 200, ctHdr("image/jpeg"), "jpeg", "image/jpeg"},
		{"not modified", "/workspaces/1/logo", 304, ctHdr(""), "", ""},
		{"unknown path", "/nowhere", 200, jsonHdr(false), `nonsense`, ""},
	} {
		method := "GET"
		if c.name == "create without message" {
			method = "POST"
		}
		rt := v.Transport(fakeRT(func(r *http.Request) *http.Response {
			return &http.Response{StatusCode: c.status, Header: c.header, Body: io.NopCloser(strings.NewReader(c.body)), Request: r}
		}))
		req, _ := http.NewRequest(method, "http://example.test/api/v1"+c.path, nil)
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(res.Body); string(b) != c.body {
			t.Errorf("%s: body not restored", c.name)
		}
		errs := rec.take()
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: unexpected report: %v", c.name, errs)
		case c.want == "":
		case len(errs) == 0:
			t.Errorf("%s: mismatch not reported", c.name)
		case !strings.Contains(errs[0], method+" /api/v1"+c.path) || !strings.Contains(errs[0], fmt.Sprint(c.status)):
			t.Errorf("%s: report does not name method, path and status: %s", c.name, errs[0])
		case !strings.Contains(errs[0], c.want):
			t.Errorf("%s: report does not mention %s: %s", c.name, c.want, errs[0])
		}
	}
}

type (
	node struct {
		Name     string  `json:"name"`
		Children []*node `json:"children"`
	}
	page[T any] struct {
		Items []T `json:"items"`
	}
	// echo is both a request and a response.
	echo struct {
		Text string `json:"text" validate:"required,oneof='a b' c"`
	}
	Inner struct {
		Deep string `json:"deep"`
	}
	odd struct {
		*Inner
		Count   int64           `json:"count,string"`
		Blob    []byte          `json:"blob"`
		Any     any             `json:"any"`
		Raw     json.RawMessage `json:"raw"`
		Small   uint8           `json:"small"`
		Pair    [2]float64      `json:"pair"`
		Labels  map[string]bool `json:"labels"`
		Skipped func()          `json:"-"`
		Untag   string
		hidden  string
	}
)

// Reflection corner cases: recursion, generics, a type in both roles,
// embedded pointers, ,string, bytes, any, fixed arrays and name collisions.
func TestOpenAPISchemaReflection(t *testing.T) {
	a, err := httpapi.New(httpapi.Config{Auth: fakeAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	type NoBody = httpapi.NoBody
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/tree", Scope: "x:read"},
		func(ctx context.Context, c *httpapi.Call, _ *NoBody) (page[node], error) { return page[node]{}, nil })
	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/echo", Scope: "x:write"},
		func(ctx context.Context, c *httpapi.Call, in *echo) (*echo, error) { return in, nil })
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/odd", Scope: "x:read"},
		func(ctx context.Context, c *httpapi.Call, _ *NoBody) (odd, error) { return odd{}, nil })
	func() {
		type twin struct {
			A int `json:"a"`
		}
		httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/twin/one", Scope: "x:read"},
			func(ctx context.Context, c *httpapi.Call, _ *NoBody) (twin, error) { return twin{}, nil })
	}()
	func() {
		type twin struct {
			B int `json:"b"`
		}
		httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/twin/two", Scope: "x:read"},
			func(ctx context.Context, c *httpapi.Call, _ *NoBody) (twin, error) { return twin{}, nil })
	}()
	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/files/{path...}", Scope: "x:read"},
		func(ctx context.Context, c *httpapi.Call, _ *NoBody) (NoBody, error) { return NoBody{}, nil })

	raw := docJSON(t, a)
	loader := openapi3.NewLoader()
	kdoc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := kdoc.Validate(loader.Context); err != nil {
		t.Fatalf("invalid document: %v\n%s", err, raw)
	}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	schemas := dig(t, doc, "components", "schemas").(map[string]any)
	if got, want := keys(schemas), []string{"Echo", "EchoInput", "Error", "Links", "Meta", "Node", "Odd", "PageNode", "Twin", "Twin2"}; !slices.Equal(got, want) {
		t.Errorf("components %v, want %v", got, want)
	}
	if dig(t, schemas, "Node", "properties", "children", "items", "oneOf", "0", "$ref") != "#/components/schemas/Node" {
		t.Errorf("recursive node %v", schemas["Node"])
	}
	if got := strs(dig(t, schemas, "EchoInput", "properties", "text", "enum")); !slices.Equal(got, []string{"a b", "c"}) {
		t.Errorf("quoted oneof %v", got)
	}
	if _, ok := dig(t, schemas, "Echo", "properties", "text").(map[string]any)["enum"]; ok {
		t.Error("validate rules leaked into the response schema")
	}
	if dig(t, doc, "paths", "/echo", "post", "requestBody", "content", "application/json", "schema", "$ref") != "#/components/schemas/EchoInput" {
		t.Error("request body does not use the Input schema")
	}
	props := dig(t, schemas, "Odd", "properties").(map[string]any)
	if got, want := keys(props), []string{"Untag", "any", "blob", "count", "deep", "labels", "pair", "raw", "small"}; !slices.Equal(got, want) {
		t.Errorf("odd members %v, want %v", got, want)
	}
	checks := map[string][2]any{
		"count": {"type", "string"}, "blob": {"contentEncoding", "base64"}, "small": {"maximum", 255.0},
		"pair": {"maxItems", 2.0}, "deep": {"type", "string"},
	}
	for name, kv := range checks {
		if got := props[name].(map[string]any)[kv[0].(string)]; got != kv[1] {
			t.Errorf("%s.%s = %v, want %v", name, kv[0], got, kv[1])
		}
	}
	if len(props["any"].(map[string]any)) != 0 || len(props["raw"].(map[string]any)) != 0 {
		t.Error("any and json.RawMessage must be unconstrained")
	}
	if slices.Contains(strs(dig(t, schemas, "Odd", "required")), "deep") != true {
		t.Error("members of embedded structs are flattened and required")
	}
	if dig(t, doc, "paths", "/files/{path}", "get", "parameters", "0", "schema", "type") != "string" {
		t.Error("{path...} wildcard")
	}
}
