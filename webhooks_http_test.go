package revops_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/webhooks"
)

// hook is a loopback receiver answering status.
type hook struct {
	*httptest.Server
	status atomic.Int64
	hits   atomic.Int64
}

func newHook(t *testing.T, status int) *hook {
	h := &hook{}
	h.status.Store(int64(status))
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.hits.Add(1)
		w.WriteHeader(int(h.status.Load()))
		io.WriteString(w, `{"received": true}`)
	}))
	t.Cleanup(h.Close)
	return h
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wid, key := e.newWorkspace("Hooks")
	base := fmt.Sprintf("/workspaces/%d/webhooks", wid)
	h := newHook(t, 200)

	c := e.do("POST", "/webhooks", key, map[string]any{"url": h.URL, "events": []string{"api_key.created", "member.*"}}).must(t, 201)
	is.Equal(c.Body["message"], "Webhook endpoint created successfully.")
	secret := c.str("secret")
	is.True(strings.HasPrefix(secret, "whsec_"))
	_, err := webhooks.ParseSecret(secret)
	is.NoErr(err)
	is.Equal(c.data()["is_active"], true)
	is.Equal(c.data()["success_count"], 0.0)
	id := c.id()

	// The secret is never shown again, under either path.
	g := e.do("GET", fmt.Sprintf("/webhooks/%d", id), key, nil).must(t, 200)
	is.Equal(g.data()["secret"], nil)
	is.Equal(g.data()["consecutive_failures"], 0.0)
	is.Equal(g.data()["last_delivery_at"], nil)
	l := e.do("GET", base, key, nil).must(t, 200).list()
	is.Equal(len(l), 1)
	is.Equal(l[0].(map[string]any)["secret"], nil)

	u := e.do("PATCH", fmt.Sprintf("%s/%d", base, id), key, map[string]any{"events": []string{"*"}, "is_active": false}).must(t, 200)
	is.Equal(u.data()["events"], []any{"*"})
	is.Equal(u.data()["is_active"], false)

	// Rotation returns the new secret once, and when the old one stops signing.
	r := e.do("POST", fmt.Sprintf("/webhooks/%d/rotate-secret", id), key, map[string]any{}).must(t, 200)
	is.True(r.str("secret") != secret)
	exp, err := time.Parse(time.RFC3339, r.str("previous_secret_expires_at"))
	is.NoErr(err)
	is.True(exp.Sub(e.clock.Now()) > 23*time.Hour && exp.Sub(e.clock.Now()) <= 24*time.Hour)
	mine := webhooks.NewSecret()
	r = e.do("POST", fmt.Sprintf("/webhooks/%d/rotate-secret", id), key, map[string]any{"secret": mine}).must(t, 200)
	is.Equal(r.str("secret"), mine)

	e.do("DELETE", fmt.Sprintf("/webhooks/%d", id), key, nil).must(t, 204)
	e.do("GET", fmt.Sprintf("/webhooks/%d", id), key, nil).must(t, 404, "not_found")
}

func TestWebhookEndpointValidation(t *testing.T) {
	e := newEnv(t, func(c *revops.Config) { c.Webhooks.AllowPrivate = false })
	_, key := e.newWorkspace("Strict")
	cases := []struct {
		body  map[string]any
		field string
		want  string
	}{
		{map[string]any{"url": "http://example.com/hook", "events": []string{"*"}}, "url", "https"},
		{map[string]any{"url": "https://127.0.0.1/hook", "events": []string{"*"}}, "url", "public address"},
		{map[string]any{"url": "https://169.254.169.254/latest", "events": []string{"*"}}, "url", "public address"},
		{map[string]any{"url": "https://localhost/hook", "events": []string{"*"}}, "url", "public address"},
		{map[string]any{"url": "https://user:pw@example.com/hook", "events": []string{"*"}}, "url", "credentials"},
		{map[string]any{"url": "not a url", "events": []string{"*"}}, "url", "absolute"},
		{map[string]any{"url": "https://93.184.215.14/hook", "events": []string{}}, "events", "at least one"},
		{map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"post.created"}}, "events.0", "not a known event type"},
		{map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"*", "nope.*"}}, "events.1", "matches no event type"},
		{map[string]any{"url": "https://93.184.215.14/hook", "events": []string{strings.Repeat("a", 100_000)}}, "events.0", "longer than 200"},
		{map[string]any{"url": "https://93.184.215.14:99999/hook", "events": []string{"*"}}, "url", "port"},
		{map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"*"}, "secret": "whsec_short"}, "secret", "24 to 64 bytes"},
		{map[string]any{"events": []string{"*"}}, "url", "required"},
	}
	for _, c := range cases {
		r := e.do("POST", "/webhooks", key, c.body).must(t, 422, "validation_failed")
		if msg := r.fieldErr(c.field); !strings.Contains(msg, c.want) || len(msg) > 300 {
			t.Errorf("%.200v: %s error %.300q, want it to mention %q (and not echo a long value)", c.body, c.field, msg, c.want)
		}
	}
	// A public literal address is fine without resolving anything.
	e.do("POST", "/webhooks", key, map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"api_key.*"}}).must(t, 201)
}

func TestWebhookDeliveriesOverHTTP(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wid, key := e.newWorkspace("Deliveries")
	h := newHook(t, 200)
	ep := e.do("POST", "/webhooks", key, map[string]any{"url": h.URL, "events": []string{"api_key.created"}}).must(t, 201).id()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.p.Start(ctx)
	t.Cleanup(func() { e.p.Stop(context.Background()) })

	e.do("POST", "/api-keys", key, map[string]any{"name": "emits api_key.created"}).must(t, 201)
	deadline := time.Now().Add(5 * time.Second)
	for h.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	is.Equal(h.hits.Load(), int64(1))
	var d map[string]any
	for time.Now().Before(deadline) { // the row is written just after the answer
		l := e.do("GET", fmt.Sprintf("/webhooks/%d/deliveries?status=success", ep), key, nil).must(t, 200).list()
		if len(l) == 1 {
			d = l[0].(map[string]any)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	is.True(d != nil)
	is.Equal(d["event_type"], "api_key.created")
	is.True(strings.HasPrefix(d["event_id"].(string), "evt_"))
	is.Equal(d["response_code"], 200.0)
	is.Equal(d["attempt"], 1.0)
	is.True(d["delivered_at"] != nil)
	is.Equal(len(e.do("GET", fmt.Sprintf("/workspaces/%d/webhooks/%d/deliveries?status=failed", wid, ep), key, nil).must(t, 200).list()), 0)
	e.do("GET", fmt.Sprintf("/webhooks/%d/deliveries?status=lost", ep), key, nil).must(t, 422, "validation_failed")
	g := e.do("GET", fmt.Sprintf("/webhooks/%d", ep), key, nil).must(t, 200)
	is.Equal(g.data()["success_count"], 1.0)
	is.True(g.data()["last_delivery_at"] != nil)

	// A delivery that succeeded cannot be retried.
	did := int64(d["id"].(float64))
	r := e.do("POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", ep, did), key, nil).must(t, 400, "cannot_retry")
	is.True(strings.Contains(r.Body["message"].(string), "succeeded"))
	e.do("POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", ep+1000, did), key, nil).must(t, 404, "not_found")

	// Test sends report what the receiver said, in spec 001's shape.
	ts := e.do("POST", fmt.Sprintf("/webhooks/%d/test", ep), key, nil).must(t, 200)
	is.Equal(ts.Body["success"], true)
	is.Equal(ts.Body["status_code"], 200.0)
	is.Equal(ts.Body["response_body"], `{"received": true}`)
	_, hasMs := ts.Body["response_time_ms"]
	is.True(hasMs)
	h.status.Store(500)
	ts = e.do("POST", fmt.Sprintf("/webhooks/%d/test", ep), key, nil).must(t, 200)
	is.Equal(ts.Body["success"], false)
	is.Equal(ts.Body["status_code"], 500.0)
	is.True(ts.Body["error"] != nil)
	h.Close()
	ts = e.do("POST", fmt.Sprintf("/webhooks/%d/test", ep), key, nil).must(t, 200)
	is.Equal(ts.Body["success"], false)
	is.Equal(ts.Body["status_code"], nil)
	is.True(strings.Contains(ts.Body["error"].(string), "Connection failed"))

	// A failed delivery can be retried, and the response names the queued attempt.
	h2 := newHook(t, 500)
	e.do("PATCH", fmt.Sprintf("/webhooks/%d", ep), key, map[string]any{"url": h2.URL}).must(t, 200)
	e.do("POST", "/api-keys", key, map[string]any{"name": "emits again"}).must(t, 201)
	var failed map[string]any
	for deadline = time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l := e.do("GET", fmt.Sprintf("/webhooks/%d/deliveries?status=retrying", ep), key, nil).must(t, 200).list(); len(l) == 1 {
			failed = l[0].(map[string]any)
			break
		}
	}
	is.True(failed != nil)
	is.Equal(failed["response_code"], 500.0)
	is.True(failed["next_retry_at"] != nil)
	rr := e.do("POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", ep, int64(failed["id"].(float64))), key, nil).must(t, 200)
	is.Equal(rr.Body["message"], "Delivery queued for retry.")
	is.Equal(rr.str("status"), "pending")
	is.Equal(rr.data()["attempt"], 2.0)
}

func TestEventTypesCatalog(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *revops.Config) {
		c.Events = []webhooks.EventType{{Name: "post.created", Description: "A post was created.", Schema: []byte(`{"type":"object"}`)}}
	})
	l := e.do("GET", "/webhooks/event-types?per_page=100", e.key, nil).must(t, 200).list()
	names := map[string]map[string]any{}
	for _, x := range l {
		m := x.(map[string]any)
		names[m["name"].(string)] = m
	}
	is.True(names["api_key.created"] != nil)
	is.Equal(names["post.created"]["description"], "A post was created.")
	is.Equal(names["post.created"]["schema"], map[string]any{"type": "object"})
	// The same catalog under the workspace's path, for members only.
	byPath := e.do("GET", fmt.Sprintf("/workspaces/%d/webhooks/event-types?per_page=100", e.ws.ID), e.key, nil).must(t, 200).list()
	is.Equal(len(byPath), len(l))
	other, otherKey := e.newWorkspace("Other")
	e.do("GET", fmt.Sprintf("/workspaces/%d/webhooks/event-types", e.ws.ID), otherKey, nil).must(t, 404, "not_found")
	e.do("GET", fmt.Sprintf("/workspaces/%d/webhooks/event-types", other), otherKey, nil).must(t, 200)
	_, err := revops.New(revops.Config{Store: e.store, Events: []webhooks.EventType{{Name: "Bad Name"}}})
	is.True(err != nil && strings.Contains(err.Error(), "Config.Events"))
}
