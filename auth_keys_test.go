package revops_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/token"
)

// instance serves another Platform on e's store and clock.
func (e *env) instance(t *testing.T, tc revops.TokensConfig) *env {
	t.Helper()
	p, err := revops.New(revops.Config{Store: e.store, Now: e.clock.Now, Resources: []string{"posts"}, Tokens: tc})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, p)
	other := *e
	other.p, other.srv, other.base = p, srv, srv.URL+"/api/v1"
	return &other
}

// TestInstancesShareGeneratedKey: with no configured keys, every instance
// on one store uses the key the first one stored: a second instance
// verifies the first one's access tokens (and publishes the key) and
// rotates its refresh tokens; an instance with a key of its own does not.
func TestInstancesShareGeneratedKey(t *testing.T) {
	e := newEnv(t)
	e.withPassword(e.owner.ID)
	first := e.login("admin@localhost", testPassword).must(t, 200)
	tok := first.str("access_token")

	b := e.instance(t, revops.TokensConfig{})
	verifyWithJWKS(t, b, tok)
	b.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), tok, nil).must(t, 200)
	next := b.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": first.str("refresh_token")}).must(t, 200)
	e.do("GET", "/auth/me", next.str("access_token"), nil).must(t, 200)

	_, own, _ := ed25519.GenerateKey(nil)
	c := e.instance(t, revops.TokensConfig{SigningKeys: []token.Key{{Private: own}}})
	c.do("GET", "/auth/me", tok, nil).must(t, 401, "unauthorized")
	c.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": next.str("refresh_token")}).must(t, 401, "unauthorized")
	// Refused there, the token still works where it was issued.
	e.do("POST", "/auth/refresh", "", map[string]any{"refresh_token": next.str("refresh_token")}).must(t, 200)
}
