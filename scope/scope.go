// Package scope holds the permission vocabulary: scopes of the form
// resource:action, the shorthands read, write, delete and *, the catalog of
// known resources and the roles a member can hold.
package scope

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Actions a scope can grant on a resource.
var Actions = []string{"read", "write", "delete"}

// All grants every action on every resource.
const All = "*"

// Parse checks the syntax of one scope: "*", an action shorthand ("read"),
// "resource:action" or "resource:*". It does not check the resource is known.
func Parse(s string) error {
	if s == All || slices.Contains(Actions, s) {
		return nil
	}
	res, act, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("scope %q must be resource:action, read, write, delete or *", s)
	}
	if !validResource(res) {
		return fmt.Errorf("scope %q has an invalid resource name", s)
	}
	if act != All && !slices.Contains(Actions, act) {
		return fmt.Errorf("scope %q has an unknown action (use read, write, delete or *)", s)
	}
	return nil
}

func validResource(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for i, c := range r {
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// grants reports whether the single scope s grants required ("resource:action").
func grants(s, required string) bool {
	if s == All || s == required {
		return true
	}
	res, act, _ := strings.Cut(required, ":")
	if s == act {
		return true
	}
	r, a, ok := strings.Cut(s, ":")
	return ok && r == res && a == All
}

// Set is a list of scopes a principal holds.
type Set []string

// Allows reports whether any scope of the set grants required.
func (s Set) Allows(required string) bool {
	for _, g := range s {
		if grants(g, required) {
			return true
		}
	}
	return false
}

// Catalog is the set of resources scopes may name. revops registers its own;
// the host adds its resources (posts, …).
type Catalog struct{ resources map[string]bool }

// NewCatalog returns a catalog of the given resources.
func NewCatalog(resources ...string) (*Catalog, error) {
	c := &Catalog{resources: map[string]bool{}}
	for _, r := range resources {
		if !validResource(r) {
			return nil, fmt.Errorf("scope: resource name %q must be lower-case letters, digits, '-', '_' or '.', starting with a letter", r)
		}
		c.resources[r] = true
	}
	return c, nil
}

// Resources lists the known resources, sorted.
func (c *Catalog) Resources() []string {
	out := make([]string, 0, len(c.resources))
	for r := range c.resources {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Validate checks s is well-formed and names a known resource.
func (c *Catalog) Validate(s string) error {
	if err := Parse(s); err != nil {
		return err
	}
	if res, _, ok := strings.Cut(s, ":"); ok && !c.resources[res] {
		return fmt.Errorf("scope %q names an unknown resource %q", s, res)
	}
	return nil
}

// Expand lists every concrete resource:action a scope grants in this catalog.
func (c *Catalog) Expand(s string) []string {
	var out []string
	for _, r := range c.Resources() {
		for _, a := range Actions {
			if req := r + ":" + a; grants(s, req) {
				out = append(out, req)
			}
		}
	}
	return out
}

// Covers reports whether holder grants everything s grants, so that a key can
// never be issued with more power than its issuer has. It returns the first
// concrete scope that is missing.
func (c *Catalog) Covers(holder interface{ Allows(string) bool }, s string) (string, bool) {
	for _, req := range c.Expand(s) {
		if !holder.Allows(req) {
			return req, false
		}
	}
	return "", true
}

// Role is what a workspace role grants: Allow minus Deny.
type Role struct {
	Allow Set
	Deny  Set
}

// Allows reports whether the role grants required.
func (r Role) Allows(required string) bool {
	return r.Allow.Allows(required) && !r.Deny.Allows(required)
}

// Role names.
const (
	Owner  = "owner"
	Admin  = "admin"
	Member = "member"
)

// DefaultRoles: owners do everything; admins everything but deleting the
// workspace; members read everything but the audit trail and write what is
// not administration.
func DefaultRoles() map[string]Role {
	// Members may not read the audit trail: it shows who did what, from
	// which address, across the workspace.
	admin := Set{"workspaces:write", "workspaces:delete", "members:write", "members:delete", "api-keys:write", "api-keys:delete", "audit:read"}
	return map[string]Role{
		Owner:  {Allow: Set{All}},
		Admin:  {Allow: Set{All}, Deny: Set{"workspaces:delete"}},
		Member: {Allow: Set{"read", "write", "delete"}, Deny: admin},
	}
}

// Grant is the effective permission of a request: every part must allow.
// A workspace key is its scopes; a personal key is its scopes ∩ the user's role.
type Grant []interface{ Allows(string) bool }

// Allows reports whether every part allows required. An empty grant allows nothing.
func (g Grant) Allows(required string) bool {
	if len(g) == 0 {
		return false
	}
	for _, p := range g {
		if !p.Allows(required) {
			return false
		}
	}
	return true
}
