// Package apitest checks real HTTP responses against the API's OpenAPI
// document, so the document cannot drift from what the handlers send.
//
// Usage, in a test of any package of the module:
//
//	doc, _ := json.Marshal(api.OpenAPI("revops", "test"))
//	v := apitest.NewValidator(t, doc, "/api/v1") // the API is mounted under /api/v1
//	client := &http.Client{Transport: v.Transport(nil)}
//	// … make requests with client; every response of a documented
//	// operation is validated, mismatches are reported with t.Errorf …
//	if v.Validated() == 0 {
//		t.Fatal("no response was validated")
//	}
//
// Requests are never validated (tests send bad ones on purpose). Responses
// to paths or methods the document does not describe (404 for unknown paths,
// 405) are skipped, as are HEAD responses; bodies of requests using the
// fields query parameter (partial objects) are not checked, their status and
// headers are.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator validates responses against one OpenAPI document.
type Validator struct {
	t      testing.TB
	router routers.Router
	prefix string
	n      atomic.Int64
}

// NewValidator loads and validates the OpenAPI document docJSON (failing
// the test if it is invalid) for an API mounted under mountPrefix ("" or
// "/" for the root). The document's own servers are ignored: request paths
// are matched after removing mountPrefix.
func NewValidator(t testing.TB, docJSON []byte, mountPrefix string) *Validator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docJSON)
	if err != nil {
		t.Fatalf("apitest: loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("apitest: the OpenAPI document is invalid: %v", err)
	}
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("apitest: routing the OpenAPI document: %v", err)
	}
	return &Validator{t: t, router: router, prefix: strings.TrimSuffix(mountPrefix, "/")}
}

// Validated returns how many responses were checked against an operation.
func (v *Validator) Validated() int { return int(v.n.Load()) }

// Transport returns a RoundTripper that sends requests with base
// (http.DefaultTransport when nil) and validates each response. The response
// body is read and handed back intact.
func (v *Validator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, base: base}
}

// Client returns an http.Client using Transport(nil).
func (v *Validator) Client() *http.Client { return &http.Client{Transport: v.Transport(nil)} }

type transport struct {
	v    *Validator
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := tr.base.RoundTrip(req)
	if err != nil || res == nil {
		return res, err
	}
	if res.Body == nil {
		res.Body = http.NoBody
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		tr.v.t.Errorf("apitest: %s %s: reading the response body: %v", req.Method, req.URL.RequestURI(), err)
		return res, nil
	}
	if err := tr.v.check(req, res.StatusCode, res.Header, body); err != nil {
		tr.v.t.Errorf("apitest: %s %s → %d does not match the OpenAPI document: %s\nbody: %s", req.Method, req.URL.RequestURI(), res.StatusCode, describe(err), snippet(body))
	}
	return res, nil
}

// describe shortens kin-openapi's errors, which repeat whole schemas, to
// one "at <JSON pointer>: <reason>" per violation.
func describe(err error) string {
	var re *openapi3filter.ResponseError
	if !errors.As(err, &re) || re.Err == nil {
		return err.Error()
	}
	var parts []string
	collect(re.Err, &parts)
	return re.Reason + ": " + strings.Join(parts, "; ")
}

func collect(err error, out *[]string) {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		for _, e := range me {
			collect(e, out)
		}
		return
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		*out = append(*out, fmt.Sprintf("at %q: %s", "/"+strings.Join(se.JSONPointer(), "/"), se.Reason))
		return
	}
	*out = append(*out, err.Error())
}

func snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// check validates one response; nil when it matches or is not documented.
func (v *Validator) check(req *http.Request, status int, header http.Header, body []byte) error {
	if req.Method == http.MethodHead {
		return nil // no body to check; kin-openapi skips HEAD too
	}
	path, ok := strings.CutPrefix(req.URL.Path, v.prefix)
	if !ok {
		return nil // not this API
	}
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	r := req.Clone(context.Background())
	r.URL.Path, r.URL.RawPath = path, ""
	if raw := req.URL.RawPath; raw != "" {
		if p, ok := strings.CutPrefix(raw, v.prefix); ok {
			if p == "" || p[0] != '/' {
				p = "/" + p
			}
			r.URL.RawPath = p
		}
	}
	route, params, err := v.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrPathNotFound), errors.Is(err, routers.ErrMethodNotAllowed):
		return nil
	case err != nil:
		var re *routers.RouteError
		if errors.As(err, &re) {
			return nil
		}
		return err
	}
	v.n.Add(1)
	if status == http.StatusNotModified && route.Operation.Responses.Status(status) == nil {
		return errors.New("status 304 is not documented")
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if req.URL.Query().Has("fields") {
		opts.ExcludeResponseBody = true // partial objects
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}
