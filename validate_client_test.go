package revops_test

import (
	"net/http"
	"testing"

	"github.com/revopsdev/revops"
)

// validatingClient is replaced by the OpenAPI-validating client once apitest lands.
func validatingClient(t testing.TB, p *revops.Platform) *http.Client { return &http.Client{} }
