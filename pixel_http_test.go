package revops_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestPixel(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	def := map[string]any{"enabled": true, "features": map[string]any{"pageviews": true, "events": true, "sessions": true}, "sample_rate": float64(1)}
	is.Equal(e.do("GET", "/pixel/config", "", nil).must(t, 200).Body, def)

	wid, key := e.newWorkspace("Site")
	// By workspace id: an unknown id is answered like a disabled site (the
	// public routes do not tell which ids exist), a known one tracks.
	off := map[string]any{"enabled": false, "features": map[string]any{"pageviews": false, "events": false, "sessions": false}, "sample_rate": float64(0)}
	is.Equal(e.do("GET", "/pixel/config", "", nil, hdr{"X-Workspace-ID": "99999"}).must(t, 200).Body, off)
	is.Equal(e.do("POST", "/pixel/track", "", map[string]any{"event": "pageview"}, hdr{"X-Workspace-ID": "99999"}).must(t, 200).Body["tracked"], false)
	is.Equal(e.do("GET", "/pixel/config", "", nil, wsHdr(wid)).must(t, 200).Body, def)
	e.do("GET", "/pixel/config", "", nil, hdr{"X-Workspace-ID": "abc"}).must(t, 400, "bad_request")
	site := e.do("GET", fmt.Sprintf("/workspaces/%d/pixel", wid), key, nil).must(t, 200).data()
	sk := site["site_key"].(string)
	is.True(strings.HasPrefix(sk, "pk_"))
	is.Equal(e.do("GET", fmt.Sprintf("/workspaces/%d/pixel", wid), key, nil).must(t, 200).data()["site_key"], sk) // stable
	is.Equal(e.do("GET", "/pixel/config?site_key="+sk, "", nil).must(t, 200).Body, def)
	e.do("GET", "/pixel/config?site_key=pk_unknownunknownunknown1", "", nil).must(t, 404, "not_found")

	ev := map[string]any{"event": "pageview", "url": "https://example.com/page", "referrer": "https://google.com",
		"user_agent": "Mozilla/5.0", "properties": map[string]any{"title": "Page Title"}, "site_key": sk}
	is.Equal(e.do("POST", "/pixel/track", "", ev).must(t, 200).Body, map[string]any{"tracked": true})
	is.Equal(e.do("POST", "/pixel/track", "", map[string]any{"event": "signup"}, wsHdr(wid), hdr{"User-Agent": "probe/1"}).must(t, 200).Body["tracked"], true)
	is.Equal(e.do("GET", "/pixel/config", "", nil, wsHdr(wid)).must(t, 200).Body, def)
	list := e.do("GET", fmt.Sprintf("/workspaces/%d/pixel/events", wid), key, nil).must(t, 200).list()
	is.Equal(len(list), 2)
	is.Equal(list[0].(map[string]any)["event"], "signup") // newest first
	is.Equal(list[0].(map[string]any)["user_agent"], "probe/1")
	is.Equal(list[1].(map[string]any)["properties"], map[string]any{"title": "Page Title"})

	// Bad input is refused with the field named; nothing is stored.
	bad := []struct {
		body  any
		field string
	}{
		{map[string]any{"site_key": sk}, "event"},
		{map[string]any{"site_key": sk, "event": "has space"}, "event"},
		{map[string]any{"site_key": sk, "event": "x", "url": "javascript:alert(1)"}, "url"},
		{map[string]any{"site_key": sk, "event": "x", "referrer": "/relative"}, "referrer"},
		{map[string]any{"site_key": sk, "event": "x", "properties": map[string]any{"nested": map[string]any{"a": 1}}}, "properties.nested"},
		{map[string]any{"site_key": sk, "event": "x", "properties": map[string]any{"long": strings.Repeat("v", 501)}}, "properties.long"},
		{map[string]any{"site_key": sk, "event": "x", "properties": map[string]any{"a\x00": 1}}, "properties"},
		{map[string]any{"site_key": sk, "event": "x", "user_agent": strings.Repeat("é", 513)}, "user_agent"},
		{map[string]any{"event": "x"}, "site_key"},
	}
	for _, b := range bad {
		r := e.do("POST", "/pixel/track", "", b.body).must(t, 422, "validation_failed")
		is.True(r.fieldErr(b.field) != "")
	}
	// Lengths count characters, not bytes.
	e.do("POST", "/pixel/track", "", map[string]any{"site_key": sk, "event": "x", "user_agent": strings.Repeat("é", 512),
		"properties": map[string]any{"s": strings.Repeat("é", 500)}}).must(t, 200)
	e.do("POST", "/pixel/track", "", map[string]any{"event": "x", "surprise": 1, "site_key": sk}).must(t, 422)
	e.do("POST", "/pixel/track", "", `{"event": "x", "site_key": "`+sk+`", "user_agent": "`+strings.Repeat("a", 17000)+`"}`).must(t, 413, "payload_too_large")
	e.do("POST", "/pixel/track", "", `{"event":`).must(t, 400, "bad_request")
	is.Equal(len(e.do("GET", fmt.Sprintf("/workspaces/%d/pixel/events", wid), key, nil).must(t, 200).list()), 3) // the two above and the long one

	// Configuration: a disabled feature or site tracks nothing.
	upd := e.do("PUT", fmt.Sprintf("/workspaces/%d/pixel", wid), key, map[string]any{"features": map[string]any{"pageviews": false}, "sample_rate": 0.5}).must(t, 200)
	is.Equal(upd.Body["message"], "Pixel configuration updated.")
	is.Equal(upd.data()["site_key"], sk)
	is.Equal(e.do("GET", "/pixel/config?site_key="+sk, "", nil).must(t, 200).Body["sample_rate"], 0.5)
	is.Equal(e.do("POST", "/pixel/track", "", ev).must(t, 200).Body["tracked"], false)
	e.do("PUT", fmt.Sprintf("/workspaces/%d/pixel", wid), key, map[string]any{"sample_rate": 2}).must(t, 422)
	e.do("PUT", fmt.Sprintf("/workspaces/%d/pixel", wid), key, map[string]any{"enabled": false, "sample_rate": 1}).must(t, 200)
	is.Equal(e.do("POST", "/pixel/track", "", map[string]any{"event": "signup", "site_key": sk}).must(t, 200).Body["tracked"], false)
	is.Equal(len(e.do("GET", fmt.Sprintf("/workspaces/%d/pixel/events", wid), key, nil).must(t, 200).list()), 3)
}
