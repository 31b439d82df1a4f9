package revops_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/internal/apitest"
)

// validatingClient checks every response the HTTP tests receive against the
// platform's own /openapi.json (kin-openapi), so the document stays true.
func openAPIValidator(t testing.TB, p *revops.Platform) *apitest.Validator {
	t.Helper()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	doc, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("openapi.json: %d %v", res.StatusCode, err)
	}
	return apitest.NewValidator(t, doc, "/api/v1")
}
