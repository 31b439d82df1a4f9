package webhooks_test

import (
	"encoding/json"
	"testing"

	"github.com/revopsdev/revops/webhooks"
)

func TestCatalogAndPatterns(t *testing.T) {
	c, err := webhooks.NewCatalog(
		webhooks.EventType{Name: "post.created", Description: "A post was created.", Schema: json.RawMessage(`{"type":"object"}`)},
		webhooks.EventType{Name: "post.updated"},
		webhooks.EventType{Name: "billing.invoice.paid"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Has("api_key.created") || !c.Has("post.created") || c.Has("post") {
		t.Fatal("catalog contents")
	}
	if ts := c.Types(); ts[0].Name != "api_key.created" || len(ts) != len(webhooks.BuiltinEvents)+3 {
		t.Fatalf("types: %v", ts)
	}
	for p, ok := range map[string]bool{
		"*": true, "post.*": true, "billing.*": true, "billing.invoice.*": true, "post.created": true,
		"post.deleted": false, "comment.*": false, "post": false, "Post.*": false, "*.created": false, "post.**": false, "": false,
	} {
		if err := c.CheckPattern(p); (err == nil) != ok {
			t.Errorf("CheckPattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
	for _, m := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "post.created", true},
		{"post.*", "post.created", true},
		{"post.*", "postage.created", false},
		{"billing.*", "billing.invoice.paid", true},
		{"post.created", "post.created", true},
		{"post.created", "post.updated", false},
	} {
		if got := webhooks.Matches(m.pattern, m.name); got != m.want {
			t.Errorf("Matches(%q, %q) = %v", m.pattern, m.name, got)
		}
	}
	for _, bad := range []webhooks.EventType{{Name: "Post.Created"}, {Name: "post"}, {Name: "api_key.created"}, {Name: "x.y", Schema: json.RawMessage(`{`)}} {
		if _, err := webhooks.NewCatalog(bad); err == nil {
			t.Errorf("NewCatalog(%+v) accepted", bad)
		}
	}
}
