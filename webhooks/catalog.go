package webhooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// EventType is one kind of event a host (or revops) publishes.
type EventType struct {
	Name        string          // e.g. "post.created"
	Description string          // shown in the catalog
	Schema      json.RawMessage // optional JSON Schema of the payload
}

// BuiltinEvents are the events revops emits for its own resources.
var BuiltinEvents = []EventType{
	{Name: "api_key.created", Description: "An API key was created."},
	{Name: "api_key.rotated", Description: "An API key was rotated; the old one works until its grace period ends."},
	{Name: "api_key.revoked", Description: "An API key was revoked."},
	{Name: "member.added", Description: "A user joined the workspace."},
	{Name: "member.removed", Description: "A member was removed from the workspace."},
	{Name: "member.role_changed", Description: "A member's role in the workspace changed."},
	{Name: "usage.threshold_reached", Description: "A feature's usage reached 80% or 100% of its limit in the current period (once per period and threshold)."},
	{Name: "endpoint.disabled", Description: "A webhook endpoint was disabled after failing (410 Gone, or failures for too long)."},
}

// Event type names are dot-separated lower-case segments: "post.created",
// "billing.invoice.paid".
var eventNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Catalog is the set of event types endpoints may subscribe to.
type Catalog struct {
	types map[string]EventType
}

// NewCatalog returns a catalog of revops's built-in events and the host's.
func NewCatalog(host ...EventType) (*Catalog, error) {
	c := &Catalog{types: map[string]EventType{}}
	for _, t := range append(slices.Clone(BuiltinEvents), host...) {
		if !eventNameRE.MatchString(t.Name) {
			return nil, fmt.Errorf("webhooks: event type %q: use dot-separated lower-case segments such as post.created", t.Name)
		}
		if _, dup := c.types[t.Name]; dup {
			return nil, fmt.Errorf("webhooks: event type %q registered twice", t.Name)
		}
		if len(t.Schema) > 0 && !json.Valid(t.Schema) {
			return nil, fmt.Errorf("webhooks: event type %q: its schema is not valid JSON", t.Name)
		}
		c.types[t.Name] = t
	}
	return c, nil
}

// Types lists the catalog sorted by name.
func (c *Catalog) Types() []EventType {
	out := make([]EventType, 0, len(c.types))
	for _, t := range c.types {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b EventType) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Has reports whether name is a registered event type.
func (c *Catalog) Has(name string) bool { _, ok := c.types[name]; return ok }

// CheckPattern validates a subscription: "*" (every event), "post.*"
// (every event under post., at any depth, of which one must exist) or an
// exact registered name. The error says what is wrong.
func (c *Catalog) CheckPattern(p string) error {
	if p == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		if !eventNameRE.MatchString(prefix + ".x") { // prefix: one or more valid segments
			return fmt.Errorf("%q is not a valid pattern: use an event type, a prefix such as post.*, or *", p)
		}
		for name := range c.types {
			if Matches(p, name) {
				return nil
			}
		}
		return fmt.Errorf("%q matches no event type", p)
	}
	if !c.Has(p) {
		return fmt.Errorf("%q is not a known event type", p)
	}
	return nil
}

// Matches reports whether an event of type name is delivered to a
// subscription to pattern.
func Matches(pattern, name string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasSuffix(prefix, ".") && strings.HasPrefix(name, prefix)
	}
	return pattern == name
}
