package httpapi

import (
	"cmp"
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
)

// OpenAPI returns the OpenAPI 3.1 document of every registered route, built
// from the route declarations and by reflection over their In and Out types.
//
// Each server given becomes an entry of the document's servers (a mount
// prefix such as "/api/v1", see MountPrefix); without any, paths are relative
// to wherever the API is mounted. The result is plain maps and slices, so it
// marshals deterministically (encoding/json sorts map keys).
//
// Shapes: request objects reject unknown members (additionalProperties:
// false) and list the members whose validate tag says required; response
// objects require every member whose json tag lacks omitempty/omitzero and
// allow no others, so the conformance tests catch drift. Pointers are
// nullable. Named struct types become components.schemas entries; a type used
// both as a request and as a response gets a separate "…Input" request schema.
func (a *API) OpenAPI(title, version string, servers ...string) map[string]any {
	g := &oaGen{api: a, bodies: map[oaKey]oaObj{}, index: map[oaKey]int{}}
	paths := oaObj{}
	tagSet := map[string]bool{}
	opIDs := map[string]bool{}
	for _, rt := range a.Routes() {
		method := strings.ToLower(rt.Method)
		if !oaMethods[method] {
			continue // OpenAPI 3.1 cannot describe other methods
		}
		p, params := oaPath(rt.Path)
		item, _ := paths[p].(oaObj)
		if item == nil {
			item = oaObj{}
			paths[p] = item
		}
		item[method] = g.operation(rt, params, oaOperationID(rt.Method, p, opIDs))
		if rt.Tag != "" {
			tagSet[rt.Tag] = true
		}
	}

	// Kernel shapes are named first so that they keep their names.
	g.schema(reflect.TypeFor[Meta](), false)
	g.schema(reflect.TypeFor[Links](), false)
	names := g.names()
	schemas := oaObj{"Error": oaErrorSchema()}
	for k, body := range g.bodies {
		schemas[names[k]] = body
	}

	doc := oaObj{
		"openapi": "3.1.0",
		"info": oaObj{
			"title":   title,
			"version": version,
			"description": "Authenticate with an API key: `Authorization: Bearer <key>`. " +
				"Single resources are returned as {\"data\": …}, creates and updates add a \"message\", " +
				"lists add \"meta\" and \"links\". Errors are {\"error\": code, \"message\": …}. " +
				"Every response carries X-Request-ID.",
		},
		"paths": paths,
		"components": oaObj{
			"schemas":         schemas,
			"responses":       oaErrorResponses(),
			"parameters":      oaParameters(),
			"headers":         oaHeaders(),
			"securitySchemes": oaObj{"bearerAuth": oaObj{"type": "http", "scheme": "bearer", "description": "An API key sent as `Authorization: Bearer <key>`."}},
		},
	}
	if len(tagSet) > 0 {
		var tags []any
		for _, t := range oaSortedKeys(tagSet) {
			tags = append(tags, oaObj{"name": t})
		}
		doc["tags"] = tags
	}
	if len(servers) > 0 {
		var list []any
		for _, s := range servers {
			if s == "" {
				s = "/"
			}
			list = append(list, oaObj{"url": s})
		}
		doc["servers"] = list
	}
	oaResolve(doc, names)
	return doc
}

// MountPrefix returns the path prefix the API is mounted under for r (the
// part of the request URI an http.StripPrefix removed), e.g. "/api/v1", or ""
// at the root. Pass it to OpenAPI as the server of the served document.
func MountPrefix(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || r.RequestURI == "" {
		return ""
	}
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	prefix, ok := strings.CutSuffix(u.Path, p)
	if !ok {
		return ""
	}
	return prefix
}

type oaObj = map[string]any

// oaKey identifies one component schema: a named type in request or
// response mode (their required lists differ).
type oaKey struct {
	t   reflect.Type
	req bool
}

// oaPlaceholder stands for a component reference until names are assigned.
type oaPlaceholder oaKey

type oaGen struct {
	api    *API
	bodies map[oaKey]oaObj
	index  map[oaKey]int // first-seen order, the last tie-break of names
}

var oaMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

var (
	oaTimeType      = reflect.TypeFor[time.Time]()
	oaAPITimeType   = reflect.TypeFor[Time]()
	oaRawType       = reflect.TypeFor[json.RawMessage]()
	oaMarshaler     = reflect.TypeFor[json.Marshaler]()
	oaUnmarshaler   = reflect.TypeFor[json.Unmarshaler]()
	oaTextMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	oaTextUnmarsh   = reflect.TypeFor[encoding.TextUnmarshaler]()
	oaNoBody        = reflect.TypeFor[NoBody]()
	oaKernelPkg     = reflect.TypeFor[Meta]().PkgPath()
)

func oaRef(section, name string) oaObj {
	return oaObj{"$ref": "#/components/" + section + "/" + name}
}

// oaPathParam is one {wildcard} of a ServeMux pattern.
type oaPathParam struct {
	name string
	rest bool // {name...}
}

var oaWildcard = regexp.MustCompile(`\{([^{}]*)\}`)

// oaPath turns a ServeMux pattern into an OpenAPI path: {name} stays,
// {name...} becomes {name}, {$} is dropped.
func oaPath(pattern string) (string, []oaPathParam) {
	var params []oaPathParam
	p := oaWildcard.ReplaceAllStringFunc(pattern, func(m string) string {
		name := m[1 : len(m)-1]
		if name == "$" {
			return ""
		}
		rest := strings.HasSuffix(name, "...")
		name = strings.TrimSuffix(name, "...")
		params = append(params, oaPathParam{name: name, rest: rest})
		return "{" + name + "}"
	})
	return p, params
}

// oaOperationID derives a stable id from method and path:
// GET /workspaces/{id}/api-keys → getWorkspacesByIdApiKeys.
func oaOperationID(method, path string, used map[string]bool) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	words := 0
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") {
			b.WriteString("By")
			seg = strings.Trim(seg, "{}")
		}
		for _, w := range strings.FieldsFunc(seg, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			b.WriteString(oaUpperFirst(w))
			words++
		}
	}
	if words == 0 {
		b.WriteString("Root")
	}
	base := b.String()
	id := base
	for n := 2; used[id]; n++ {
		id = base + strconv.Itoa(n)
	}
	used[id] = true
	return id
}

func oaUpperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func oaDeref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func oaSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (g *oaGen) operation(rt *Route, pathParams []oaPathParam, id string) oaObj {
	op := oaObj{"operationId": id}
	if rt.Summary != "" {
		op["summary"] = rt.Summary
	}
	if rt.Tag != "" {
		op["tags"] = []any{rt.Tag}
	}
	var desc []string
	if rt.Public {
		op["security"] = []any{}
		desc = append(desc, "Public: no API key is needed.")
	} else {
		op["security"] = []any{oaObj{"bearerAuth": []any{}}}
		op["x-required-scope"] = rt.Scope
		desc = append(desc, "Required scope: "+rt.Scope)
	}
	switch rt.Tenant {
	case TenantPath:
		desc = append(desc, "Acts in the workspace of the path parameter `"+rt.WorkspaceParam+"`; a workspace the key cannot see is not found.")
	case TenantContext:
		desc = append(desc, "Acts in the workspace named by the X-Workspace-ID header, else the API key's own workspace.")
	}

	raw := len(rt.RawBody) > 0 || len(rt.RawResponse) > 0
	var params []any
	for _, p := range pathParams {
		d := "The " + p.name + " (a positive integer)."
		if rt.Tenant == TenantPath && p.name == rt.WorkspaceParam {
			d = "Workspace ID."
		}
		schema := oaObj{"type": "integer", "format": "int64", "minimum": 1}
		if p.rest {
			schema = oaObj{"type": "string"}
			d = "The rest of the path."
		}
		params = append(params, oaObj{"name": p.name, "in": "path", "required": true, "description": d, "schema": schema})
	}
	if rt.Tenant == TenantContext {
		params = append(params, oaRef("parameters", "WorkspaceHeader"))
	}
	if idempotent(rt) {
		params = append(params, oaRef("parameters", "IdempotencyKey"))
	}
	if len(rt.RawResponse) > 0 {
		params = append(params, oaRef("parameters", "IfNoneMatch"))
	}
	fields := oaSortedKeys(rt.fields)
	switch {
	case rt.IsList():
		desc = append(desc, "Paginated with page and per_page; filtered by the created/updated date parameters.")
		params = append(params, oaRef("parameters", "Page"), oaRef("parameters", "PerPage"))
		if len(rt.Sort) > 0 {
			params = append(params, oaObj{"name": "sort", "in": "query", "schema": oaObj{"type": "string"},
				"description": "Comma-separated sort fields, each prefixed with - for descending order (e.g. -" + rt.Sort[0] + "). Default order is ascending. Allowed: " + strings.Join(rt.Sort, ", ") + "."})
		}
		if len(fields) > 0 {
			params = append(params, oaFieldsParam(fields))
		}
		if len(rt.Include) > 0 {
			params = append(params, oaIncludeParam(rt.Include))
		}
		if len(rt.Statuses) > 0 {
			enum := make([]any, len(rt.Statuses))
			for i, s := range rt.Statuses {
				enum[i] = s
			}
			params = append(params, oaObj{"name": "status", "in": "query", "description": "Only items with this status.", "schema": oaObj{"type": "string", "enum": enum}})
		}
		params = append(params, oaRef("parameters", "CreatedAfter"), oaRef("parameters", "CreatedBefore"),
			oaRef("parameters", "UpdatedAfter"), oaRef("parameters", "UpdatedBefore"))
		if rt.Search {
			params = append(params, oaRef("parameters", "Search"))
		}
	case !raw && rt.Method == http.MethodGet && rt.Status != http.StatusNoContent:
		if len(fields) > 0 {
			params = append(params, oaFieldsParam(fields))
		}
		if len(rt.Include) > 0 {
			params = append(params, oaIncludeParam(rt.Include))
		}
	}
	for _, q := range rt.Query {
		params = append(params, oaObj{"name": q.Name, "in": "query", "description": q.Description, "schema": oaObj{"type": "string"}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	body := g.requestBody(rt)
	if body != nil {
		op["requestBody"] = body
	}
	op["responses"] = g.responses(rt, body != nil)
	op["description"] = strings.Join(desc, "\n\n")
	return op
}

func oaFieldsParam(fields []string) oaObj {
	example := fields[0]
	if len(fields) > 1 && slices.Contains(fields, "id") {
		example = "id," + fields[slices.IndexFunc(fields, func(f string) bool { return f != "id" })]
	}
	return oaObj{"name": "fields", "in": "query", "schema": oaObj{"type": "string"},
		"description": "Comma-separated members to return (e.g. fields=" + example + "). Selecting fields returns partial objects: " +
			"only the listed members are present, even those marked required. Allowed: " + strings.Join(fields, ", ") + "."}
}

func oaIncludeParam(include []string) oaObj {
	return oaObj{"name": "include", "in": "query", "schema": oaObj{"type": "string"},
		"description": "Comma-separated related resources to embed. Allowed: " + strings.Join(include, ", ") + "."}
}

// oaBinary is the schema of a raw body of media type mt. format: binary
// keeps OpenAPI 3.0 tools (and kin-openapi's body decoding) reading it as
// bytes; contentMediaType is the 3.1 way to say what they are.
func oaBinary(mt string) oaObj {
	return oaObj{"type": "string", "format": "binary", "contentMediaType": mt}
}

func (g *oaGen) requestBody(rt *Route) oaObj {
	if len(rt.RawBody) > 0 {
		content := oaObj{}
		for _, mt := range rt.RawBody {
			content[mt] = oaObj{"schema": oaBinary(mt)}
		}
		return oaObj{"required": true, "description": "The raw bytes, sent with their media type as Content-Type.", "content": content}
	}
	if rt.in == nil || rt.in == oaNoBody {
		return nil
	}
	t := oaDeref(rt.in)
	s := g.schema(t, true)
	required := false
	if body := g.resolve(s); body != nil {
		r, _ := body["required"].([]string)
		required = len(r) > 0
	}
	out := oaObj{"required": required, "content": oaObj{"application/json": oaObj{"schema": s}}}
	if required {
		out["description"] = "A JSON object; unknown members are rejected."
	} else {
		out["description"] = "A JSON object; unknown members are rejected. An empty body is read as {}."
	}
	return out
}

// resolve returns the body of a component placeholder, or s itself.
func (g *oaGen) resolve(s oaObj) oaObj {
	if p, ok := s["$ref"].(oaPlaceholder); ok {
		return g.bodies[oaKey(p)]
	}
	return s
}

func (g *oaGen) responses(rt *Route, hasBody bool) oaObj {
	headers := func() oaObj {
		h := oaObj{"X-Request-ID": oaRef("headers", "X-Request-ID")}
		for _, name := range oaRateHeaders {
			h[name] = oaRef("headers", name)
		}
		if idempotent(rt) {
			h["Idempotent-Replayed"] = oaRef("headers", "Idempotent-Replayed")
		}
		return h
	}
	res := oaObj{}
	status := strconv.Itoa(rt.Status)
	desc := http.StatusText(rt.Status)
	switch {
	case len(rt.RawResponse) > 0:
		content := oaObj{}
		for _, mt := range rt.RawResponse {
			content[mt] = oaObj{"schema": oaBinary(mt)}
		}
		res[status] = oaObj{"description": desc + ": the raw bytes.", "headers": headers(), "content": content}
		res["304"] = oaObj{"description": "Not Modified: If-None-Match matched the current ETag.", "headers": headers()}
	case len(rt.RawBody) > 0:
		required := []string{"data"}
		if rt.Message != "" {
			required = []string{"message", "data"}
		}
		schema := oaObj{"type": "object", "additionalProperties": false, "required": required, "properties": oaObj{
			"message": oaObj{"type": "string"},
			"data":    oaObj{"type": "object"},
		}}
		if rt.Message != "" {
			schema["properties"].(oaObj)["message"].(oaObj)["examples"] = []any{rt.Message}
		}
		res[status] = oaObj{"description": desc, "headers": headers(), "content": oaObj{"application/json": oaObj{"schema": schema}}}
	case rt.Status == http.StatusNoContent:
		res[status] = oaObj{"description": desc, "headers": headers()}
	default:
		res[status] = oaObj{"description": desc, "headers": headers(), "content": oaObj{"application/json": oaObj{"schema": g.success(rt)}}}
	}

	if body, off := g.api.disabled(rt.Tag); off {
		// DisableTag: the route answers 200 with body instead.
		alt := g.schema(oaDeref(reflect.TypeOf(body)), false)
		const note = " The feature is disabled on this server: the route answers 200 with the alternative body."
		if cur, ok := res["200"].(oaObj); ok {
			if content, ok := cur["content"].(oaObj); ok {
				js := content["application/json"].(oaObj)
				js["schema"] = oaObj{"oneOf": []any{js["schema"], alt}}
			} else {
				cur["content"] = oaObj{"application/json": oaObj{"schema": alt}}
			}
			cur["description"] = cur["description"].(string) + "." + note
		} else {
			res["200"] = oaObj{"description": "OK." + note, "headers": headers(), "content": oaObj{"application/json": oaObj{"schema": alt}}}
		}
	}
	res["400"] = oaRef("responses", "BadRequest")
	if !rt.Public {
		res["401"] = oaRef("responses", "Unauthorized")
		res["403"] = oaRef("responses", "Forbidden")
	}
	res["429"] = oaRef("responses", "TooManyRequests")
	res["404"] = oaRef("responses", "NotFound")
	if rt.Method != http.MethodGet && rt.Method != http.MethodHead {
		res["409"] = oaRef("responses", "Conflict")
	}
	if hasBody {
		res["413"] = oaRef("responses", "PayloadTooLarge")
		res["415"] = oaRef("responses", "UnsupportedMediaType")
	}
	res["422"] = oaRef("responses", "ValidationFailed")
	res["500"] = oaRef("responses", "ServerError")
	res["default"] = oaRef("responses", "Error")
	return res
}

// success is the JSON body of a successful JSON route, envelope included.
func (g *oaGen) success(rt *Route) oaObj {
	data := oaObj{}
	if rt.out != nil {
		data = g.schema(oaDeref(rt.out), false)
	}
	if rt.IsList() {
		return oaObj{"type": "object", "additionalProperties": false, "required": []string{"data", "meta", "links"}, "properties": oaObj{
			"data":  oaObj{"type": "array", "items": data},
			"meta":  g.schema(reflect.TypeFor[Meta](), false),
			"links": g.schema(reflect.TypeFor[Links](), false),
		}}
	}
	if rt.Bare {
		return data
	}
	props := oaObj{"data": data}
	required := []string{"data"}
	if rt.Message != "" {
		props["message"] = oaObj{"type": "string", "const": rt.Message}
		required = []string{"message", "data"}
	}
	return oaObj{"type": "object", "additionalProperties": false, "required": required, "properties": props}
}

// schema reflects t; req selects request rules (validate tags, unknown
// members rejected) over response rules (non-omitempty members required).
func (g *oaGen) schema(t reflect.Type, req bool) oaObj {
	switch t {
	case oaTimeType, oaAPITimeType:
		return oaObj{"type": "string", "format": "date-time"}
	case oaRawType:
		return oaObj{}
	}
	if t.Kind() == reflect.Pointer {
		return oaNullable(g.schema(t.Elem(), req))
	}
	custom, text := oaMarshaler, oaTextMarshaler
	if req {
		custom, text = oaUnmarshaler, oaTextUnmarsh
	}
	if t.Implements(custom) || reflect.PointerTo(t).Implements(custom) {
		return oaObj{} // its own JSON: nothing known
	}
	if t.Implements(text) || reflect.PointerTo(t).Implements(text) {
		return oaObj{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return oaObj{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return oaObj{"type": "integer", "format": "int64"}
	case reflect.Int32:
		return oaObj{"type": "integer", "format": "int32"}
	case reflect.Int8:
		return oaObj{"type": "integer", "minimum": -128, "maximum": 127}
	case reflect.Int16:
		return oaObj{"type": "integer", "minimum": -32768, "maximum": 32767}
	case reflect.Uint8:
		return oaObj{"type": "integer", "minimum": 0, "maximum": 255}
	case reflect.Uint16:
		return oaObj{"type": "integer", "minimum": 0, "maximum": 65535}
	case reflect.Uint32:
		return oaObj{"type": "integer", "minimum": 0, "maximum": 4294967295}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return oaObj{"type": "integer", "minimum": 0}
	case reflect.Float32:
		return oaObj{"type": "number", "format": "float"}
	case reflect.Float64:
		return oaObj{"type": "number", "format": "double"}
	case reflect.String:
		return oaObj{"type": "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(custom) {
			return oaObj{"type": "string", "contentEncoding": "base64"}
		}
		return oaObj{"type": "array", "items": g.schema(t.Elem(), req)}
	case reflect.Array:
		return oaObj{"type": "array", "items": g.schema(t.Elem(), req), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return oaObj{"type": "object", "additionalProperties": g.schema(t.Elem(), req)}
	case reflect.Struct:
		if len(oaStructFields(t)) == 0 {
			return oaObj{"type": "object", "additionalProperties": false}
		}
		if t.Name() == "" {
			return g.object(t, req)
		}
		k := oaKey{t, req}
		if _, ok := g.index[k]; !ok {
			g.index[k] = len(g.index)
			g.bodies[k] = nil // in progress: recursive uses see the key
			g.bodies[k] = g.object(t, req)
		}
		return oaObj{"$ref": oaPlaceholder(k)}
	}
	return oaObj{} // interfaces and the unencodable
}

// oaNullable lets s also be null: a type array for simple schemas, oneOf
// with null around references.
func oaNullable(s oaObj) oaObj {
	if _, ok := s["$ref"]; ok {
		return oaObj{"oneOf": []any{s, oaObj{"type": "null"}}}
	}
	if one, ok := s["oneOf"].([]any); ok {
		for _, o := range one {
			if m, ok := o.(oaObj); ok && m["type"] == "null" {
				return s
			}
		}
		return oaObj{"oneOf": append(slices.Clone(one), oaObj{"type": "null"})}
	}
	switch ty := s["type"].(type) {
	case string:
		s["type"] = []any{ty, "null"}
	case []any:
		if !slices.Contains(ty, any("null")) {
			s["type"] = append(ty, "null")
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, nil) {
		s["enum"] = append(enum, nil)
	}
	return s
}

func oaIsNullable(s oaObj) bool {
	if ty, ok := s["type"].([]any); ok {
		return slices.Contains(ty, any("null"))
	}
	return false
}

// oaField is one JSON member of a struct.
type oaField struct {
	name      string
	f         reflect.StructField
	omitEmpty bool
	asString  bool
}

// oaStructFields lists the JSON members of a struct the way encoding/json
// does: exported fields by json name, "-" skipped, untagged embedded structs
// flattened, shallower names winning.
func oaStructFields(t reflect.Type) []oaField {
	var out []oaField
	seen := map[string]bool{}
	visited := map[reflect.Type]bool{}
	queue := []reflect.Type{t}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if visited[cur] {
			continue
		}
		visited[cur] = true
		var next []reflect.Type
		for i := range cur.NumField() {
			f := cur.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					if !f.IsExported() {
						continue // encoding/json cannot reach through it
					}
					ft = ft.Elem()
				}
				if name == "" && ft.Kind() == reflect.Struct {
					next = append(next, ft)
					continue
				}
				if !f.IsExported() {
					continue
				}
			} else if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			o := oaField{name: name, f: f}
			for _, opt := range strings.Split(opts, ",") {
				switch opt {
				case "omitempty", "omitzero":
					o.omitEmpty = true
				case "string":
					o.asString = true
				}
			}
			out = append(out, o)
		}
		queue = append(queue, next...)
	}
	return out
}

func (g *oaGen) object(t reflect.Type, req bool) oaObj {
	props := oaObj{}
	required := []string{}
	for _, f := range oaStructFields(t) {
		var rules oaRules
		if req {
			rules = oaParseValidate(f.f.Tag.Get("validate"))
		}
		ft := f.f.Type
		if req && rules.required && ft.Kind() == reflect.Pointer {
			ft = oaDeref(ft) // required means present and not null
		}
		var s oaObj
		if k := oaDeref(ft).Kind(); f.asString && (k == reflect.Bool || k == reflect.String || oaIsNumber(k)) {
			s = oaObj{"type": "string"}
			if ft.Kind() == reflect.Pointer {
				s = oaNullable(s)
			}
		} else {
			s = g.schema(ft, req)
			if req {
				oaApply(s, ft, rules.field)
				if len(rules.items) > 0 {
					if items, ok := s["items"].(oaObj); ok {
						oaApply(items, oaDeref(ft).Elem(), rules.items)
					}
				}
			}
		}
		if req && rules.required && ft.Kind() == reflect.String {
			if _, ok := s["minLength"]; !ok {
				s["minLength"] = 1
			}
		}
		props[f.name] = s
		if (req && rules.required) || (!req && !f.omitEmpty) {
			required = append(required, f.name)
		}
	}
	out := oaObj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func oaIsNumber(k reflect.Kind) bool {
	return oaIsInt(k) || k == reflect.Float32 || k == reflect.Float64
}

func oaIsInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// oaRules are the documentable parts of a validate tag: rules of the field
// and, after dive, of its elements.
type oaRules struct {
	required     bool
	field, items []oaRule
}

type oaRule struct{ name, param string }

func oaParseValidate(tag string) oaRules {
	var r oaRules
	items := false
	for _, part := range strings.Split(tag, ",") {
		if part == "" || strings.Contains(part, "|") {
			continue // alternatives are not documentable
		}
		name, param, _ := strings.Cut(part, "=")
		switch {
		case name == "dive":
			if items {
				return r // deeper levels are not documented
			}
			items = true
			continue
		case name == "keys" || name == "endkeys":
			return r
		case name == "required" && !items:
			r.required = true
			continue
		}
		if items {
			r.items = append(r.items, oaRule{name, param})
		} else {
			r.field = append(r.field, oaRule{name, param})
		}
	}
	return r
}

// oaApply adds validator rules to a schema of t as JSON Schema keywords.
func oaApply(s oaObj, t reflect.Type, rules []oaRule) {
	if _, ok := s["$ref"]; ok || s["oneOf"] != nil {
		return
	}
	t = oaDeref(t)
	k := t.Kind()
	bound := func(minKey, maxKey string, lower bool, n float64) {
		key := maxKey
		if lower {
			key = minKey
		}
		s[key] = oaNumber(n)
	}
	for _, r := range rules {
		n, numErr := strconv.ParseFloat(r.param, 64)
		switch r.name {
		case "max", "lte", "min", "gte", "len", "eq":
			if numErr != nil {
				continue
			}
			mins := r.name == "min" || r.name == "gte" || r.name == "len" || r.name == "eq"
			maxs := r.name == "max" || r.name == "lte" || r.name == "len" || r.name == "eq"
			for _, m := range []struct{ on, lower bool }{{mins, true}, {maxs, false}} {
				if !m.on {
					continue
				}
				switch {
				case k == reflect.String:
					bound("minLength", "maxLength", m.lower, n)
				case k == reflect.Slice || k == reflect.Array:
					bound("minItems", "maxItems", m.lower, n)
				case k == reflect.Map:
					bound("minProperties", "maxProperties", m.lower, n)
				case oaIsNumber(k):
					bound("minimum", "maximum", m.lower, n)
				}
			}
		case "lt", "gt":
			if numErr == nil && oaIsNumber(k) {
				bound("exclusiveMinimum", "exclusiveMaximum", r.name == "gt", n)
			}
		case "oneof":
			var enum []any
			for _, v := range oaOneOfValues(r.param) {
				if oaIsNumber(k) {
					f, err := strconv.ParseFloat(v, 64)
					if err != nil {
						continue
					}
					enum = append(enum, oaNumber(f))
				} else {
					enum = append(enum, v)
				}
			}
			if oaIsNullable(s) {
				enum = append(enum, nil)
			}
			s["enum"] = enum
		case "email":
			s["format"] = "email"
		case "url", "http_url", "uri":
			s["format"] = "uri"
		case "uuid", "uuid4", "uuid_rfc4122":
			s["format"] = "uuid"
		case "printascii":
			s["pattern"] = `^[\x20-\x7E]*$`
		case "alphanum":
			s["pattern"] = `^[a-zA-Z0-9]*$`
		}
	}
}

// oaNumber keeps integral values integers in the JSON.
func oaNumber(f float64) any {
	if f == float64(int64(f)) {
		return int64(f)
	}
	return f
}

// oaOneOfValues splits a oneof parameter: space-separated, 'quoted' values
// may hold spaces.
func oaOneOfValues(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '\'' {
			if end := strings.IndexByte(s[1:], '\''); end >= 0 {
				out = append(out, s[1:end+1])
				s = s[end+2:]
				continue
			}
		}
		v, rest, _ := strings.Cut(s, " ")
		out = append(out, v)
		s = rest
	}
	return out
}

var oaPkgPath = regexp.MustCompile(`(?:[\w\-~]+[./])+`)
var oaNameJunk = regexp.MustCompile(`[^A-Za-z0-9_.\-]+`)

// oaTypeName is the base component name of a named type: its Go name,
// first letter upper-cased, type arguments appended by their short names
// (page[pkg.node] → PageNode).
func oaTypeName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 {
		args := oaPkgPath.ReplaceAllString(name[i:], "")
		name = name[:i]
		for _, w := range strings.FieldsFunc(args, func(r rune) bool { return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			name += oaUpperFirst(w)
		}
	}
	name = strings.Trim(oaNameJunk.ReplaceAllString(name, "_"), "_")
	if name == "" {
		name = "Object"
	}
	return oaUpperFirst(name)
}

// names assigns component names deterministically: kernel types first,
// then by package path; collisions get the package name as a prefix, then
// a number.
func (g *oaGen) names() map[oaKey]string {
	modes := map[reflect.Type]int{}
	for k := range g.bodies {
		modes[k.t]++
	}
	cand := map[oaKey]string{}
	keys := make([]oaKey, 0, len(g.bodies))
	for k := range g.bodies {
		c := oaTypeName(k.t)
		if k.req && modes[k.t] > 1 {
			c += "Input"
		}
		cand[k] = c
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b oaKey) int {
		if c := cmp.Compare(cand[a], cand[b]); c != 0 {
			return c
		}
		ak, bk := a.t.PkgPath() == oaKernelPkg, b.t.PkgPath() == oaKernelPkg
		if ak != bk {
			if ak {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.t.PkgPath(), b.t.PkgPath()); c != 0 {
			return c
		}
		return cmp.Compare(g.index[a], g.index[b])
	})
	used := map[string]string{"Error": oaKernelPkg} // name → package path of its holder
	out := make(map[oaKey]string, len(keys))
	for _, k := range keys {
		name := cand[k]
		if holder, taken := used[name]; taken && holder != k.t.PkgPath() {
			pkg := k.t.PkgPath()
			pkg = pkg[strings.LastIndexByte(pkg, '/')+1:]
			name = oaUpperFirst(strings.Trim(oaNameJunk.ReplaceAllString(pkg, "_"), "_")) + cand[k]
		}
		base := name
		for n := 2; used[name] != ""; n++ {
			name = base + strconv.Itoa(n)
		}
		used[name] = k.t.PkgPath()
		out[k] = name
	}
	return out
}

// oaResolve replaces component placeholders by references.
func oaResolve(v any, names map[oaKey]string) {
	switch x := v.(type) {
	case oaObj:
		for key, val := range x {
			if p, ok := val.(oaPlaceholder); ok {
				x[key] = "#/components/schemas/" + names[oaKey(p)]
				continue
			}
			oaResolve(val, names)
		}
	case []any:
		for _, e := range x {
			oaResolve(e, names)
		}
	}
}

func oaErrorSchema() oaObj {
	codes := []string{string(core.CodeValidation), string(core.CodeNotFound), string(core.CodeUnauthorized),
		string(core.CodeAccessDenied), string(core.CodeFeatureLimit), string(core.CodeRateLimited), string(core.CodeInternal),
		string(core.CodeBadRequest), string(core.CodeConflict), string(core.CodeTooLarge), string(core.CodeMethodNotAllowed),
		string(core.CodeUnsupportedMedia), string(core.CodeTOTPRequired), string(core.CodeTOTPEnrollmentRequired), string(core.CodeUnavailable)}
	return oaObj{
		"type":        "object",
		"description": "The error envelope. Some errors carry extra members (rate_limit_exceeded: retry_after, limit, remaining, reset_at; feature_limit_reached: feature, upgrade_url …).",
		"required":    []string{"error", "message"},
		"properties": oaObj{
			"error":      oaObj{"type": "string", "description": "Machine-readable code: " + strings.Join(codes, ", ") + "."},
			"message":    oaObj{"type": "string", "description": "Human-readable explanation."},
			"errors":     oaObj{"type": "object", "description": "validation_failed only: messages per field, keyed by JSON field name (dotted for nested fields).", "additionalProperties": oaObj{"type": "array", "items": oaObj{"type": "string"}}},
			"request_id": oaObj{"type": "string", "description": "5xx errors (server_error, service_unavailable) only: quote it when reporting the problem."},
		},
		"additionalProperties": true,
	}
}

// oaErrorResponses are the documented error statuses; each narrows Error
// to the codes the kernel answers with at that status.
func oaErrorResponses() oaObj {
	resp := func(desc string, narrow oaObj, extraHeaders ...string) oaObj {
		schema := oaRef("schemas", "Error")
		if narrow != nil {
			schema = oaObj{"allOf": []any{schema, narrow}}
		}
		h := oaObj{"X-Request-ID": oaRef("headers", "X-Request-ID")}
		for _, name := range extraHeaders {
			h[name] = oaRef("headers", name)
		}
		return oaObj{"description": desc, "headers": h, "content": oaObj{"application/json": oaObj{"schema": schema}}}
	}
	code := func(codes ...core.Code) oaObj {
		if len(codes) == 1 {
			return oaObj{"type": "object", "properties": oaObj{"error": oaObj{"const": string(codes[0])}}}
		}
		enum := make([]any, len(codes))
		for i, c := range codes {
			enum[i] = string(c)
		}
		return oaObj{"type": "object", "properties": oaObj{"error": oaObj{"enum": enum}}}
	}
	server := code(core.CodeInternal)
	server["required"] = []string{"request_id"}
	server["properties"].(oaObj)["message"] = oaObj{"const": "An unexpected error occurred."}
	rate := append([]string{"Retry-After"}, oaRateHeaders...)
	return oaObj{
		"BadRequest":   resp("bad_request: malformed JSON, a bad header or a cancelled request.", nil),
		"Unauthorized": resp("unauthorized: the API key is missing, invalid, expired or revoked.", code(core.CodeUnauthorized), "WWW-Authenticate"),
		"Forbidden": resp("access_denied (the message names the missing scope), feature_limit_reached, or totp_enrollment_required (the workspace requires two-factor authentication and the user has not enabled it).",
			code(core.CodeAccessDenied, core.CodeFeatureLimit, core.CodeTOTPEnrollmentRequired)),
		"NotFound":             resp("not_found: the resource does not exist or is not visible to the key.", code(core.CodeNotFound)),
		"Conflict":             resp("conflict: the request conflicts with the current state.", code(core.CodeConflict)),
		"PayloadTooLarge":      resp("payload_too_large: the body exceeds the size limit.", code(core.CodeTooLarge)),
		"UnsupportedMediaType": resp("unsupported_media_type: the body is not of an accepted media type.", code(core.CodeUnsupportedMedia)),
		"ValidationFailed":     resp("validation_failed: errors lists messages per field.", code(core.CodeValidation)),
		"TooManyRequests":      resp("rate_limit_exceeded: retry after the window resets.", code(core.CodeRateLimited), rate...),
		"ServerError":          resp("server_error: an unexpected failure; request_id identifies it in the logs.", server),
		"Error":                resp("Any error.", nil),
	}
}

// idempotent reports whether a route honours Idempotency-Key.
func idempotent(rt *Route) bool {
	switch rt.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return !rt.Public
	}
	return false
}

var oaRateHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"}

func oaHeaders() oaObj {
	intHeader := func(desc string) oaObj {
		return oaObj{"description": desc, "schema": oaObj{"type": "integer", "minimum": 0}}
	}
	return oaObj{
		"X-Request-ID": oaObj{"description": "The request id: a valid incoming X-Request-ID is echoed, else one is made up.", "required": true,
			"schema": oaObj{"type": "string", "pattern": requestIDRE.String()}},
		"WWW-Authenticate":      oaObj{"description": "Always Bearer.", "required": true, "schema": oaObj{"type": "string"}},
		"Retry-After":           intHeader("Seconds until a request may succeed (rate-limited routes)."),
		"X-RateLimit-Limit":     intHeader("Requests allowed in the window (rate-limited routes)."),
		"X-RateLimit-Remaining": intHeader("Requests remaining in the window (rate-limited routes)."),
		"X-RateLimit-Reset":     intHeader("Unix time at which the window resets (rate-limited routes)."),
		"RateLimit-Policy":      oaObj{"description": "IETF RateLimit-Policy field (rate-limited routes).", "schema": oaObj{"type": "string"}},
		"RateLimit":             oaObj{"description": "IETF RateLimit field (rate-limited routes).", "schema": oaObj{"type": "string"}},
		"Idempotent-Replayed":   oaObj{"description": "true when this is the recorded response of an earlier request with the same Idempotency-Key.", "schema": oaObj{"type": "string", "enum": []any{"true"}}},
	}
}

func oaParameters() oaObj {
	date := func(name, desc string) oaObj {
		return oaObj{"name": name, "in": "query", "schema": oaObj{"type": "string"},
			"description": desc + " An ISO 8601 date (2026-01-15) or date-time (2026-01-15T10:30:00Z)."}
	}
	return oaObj{
		"Page": oaObj{"name": "page", "in": "query", "description": "Page number, from 1.",
			"schema": oaObj{"type": "integer", "minimum": 1, "default": 1}},
		"PerPage": oaObj{"name": "per_page", "in": "query", "description": fmt.Sprintf("Items per page, 1 to %d.", core.MaxPerPage),
			"schema": oaObj{"type": "integer", "minimum": 1, "maximum": core.MaxPerPage, "default": core.DefaultPerPage}},
		"CreatedAfter":  date("created_after", "Only items created after this time."),
		"CreatedBefore": date("created_before", "Only items created before this time."),
		"UpdatedAfter":  date("updated_after", "Only items updated after this time."),
		"UpdatedBefore": date("updated_before", "Only items updated before this time."),
		"Search": oaObj{"name": "search", "in": "query", "description": "Full-text search.",
			"schema": oaObj{"type": "string", "maxLength": 255}},
		"WorkspaceHeader": oaObj{"name": "X-Workspace-ID", "in": "header", "required": false,
			"description": "The workspace to act in. Defaults to the API key's own workspace, or to the only workspace of a personal key's or token's user; required when the user has several.",
			"schema":      oaObj{"type": "integer", "format": "int64", "minimum": 1}},
		"IdempotencyKey": oaObj{"name": "Idempotency-Key", "in": "header", "required": false,
			"description": "1 to 255 printable ASCII characters. The first request with a key runs; a retry with the same method, path and body within 24 hours gets the recorded response with Idempotent-Replayed: true; one still running gets 409; another request with the key gets 422. A 5xx response is not recorded.",
			"schema":      oaObj{"type": "string", "minLength": 1, "maxLength": 255}},
		"IfNoneMatch": oaObj{"name": "If-None-Match", "in": "header", "required": false,
			"description": "An ETag from an earlier response; if it still matches the answer is 304 Not Modified.",
			"schema":      oaObj{"type": "string"}},
	}
}
