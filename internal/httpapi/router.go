package httpapi

import (
	"net/http"
	"strings"
)

// The ServeMux stays the router of record; fastTree is a lookup in front of
// it for the common request, a clean path over patterns made only of
// literal and {name} / {name...} segments. It walks the segments as the
// ServeMux's own tree does (a literal child before a wildcard, a wildcard
// before a rest wildcard, backtracking), so it finds the same pattern, without
// the ServeMux's path cleaning, host matching and three allocations per
// request. Anything else (escapes, dot segments, trailing or double
// slashes, a pattern it cannot express) goes to the ServeMux.
type fastNode struct {
	lits   map[string]*fastNode
	wild   *fastNode // {name}
	rest   *fastLeaf // {name...}
	routes *fastLeaf // a pattern ends here
}

// fastLeaf is a pattern: its routes and its wildcard names in order (two
// patterns may name the wildcard at one position differently).
type fastLeaf struct {
	pr    *pathRoutes
	names []string
}

// maxFastValues bounds the wildcards a fast match collects on the stack.
const maxFastValues = 8

// fastPattern splits a ServeMux path pattern into segments, or reports
// that the fast tree cannot express it.
func fastPattern(pattern string) ([]string, bool) {
	if pattern == "/" || !strings.HasPrefix(pattern, "/") || strings.HasSuffix(pattern, "/") {
		return nil, false
	}
	segs := strings.Split(pattern[1:], "/")
	if len(segs) > 64 {
		return nil, false
	}
	wilds := 0
	for i, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "%") {
			return nil, false
		}
		if strings.ContainsAny(s, "{}") {
			name, ok := strings.CutPrefix(s, "{")
			name, ok2 := strings.CutSuffix(name, "}")
			if !ok || !ok2 || name == "" || name == "$" || strings.ContainsAny(name, "{}") {
				return nil, false
			}
			if n, multi := strings.CutSuffix(name, "..."); multi && (n == "" || i != len(segs)-1) {
				return nil, false
			}
			if wilds++; wilds > maxFastValues {
				return nil, false
			}
		}
	}
	return segs, true
}

// add inserts pattern's segments; false if the tree cannot hold it.
func (n *fastNode) add(segs []string, pr *pathRoutes) bool {
	leaf := &fastLeaf{pr: pr}
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			if rest, multi := strings.CutSuffix(name, "..."); multi {
				if n.rest != nil || i != len(segs)-1 {
					return false
				}
				leaf.names = append(leaf.names, rest)
				n.rest = leaf
				return true
			}
			leaf.names = append(leaf.names, name)
			if n.wild == nil {
				n.wild = &fastNode{}
			}
			n = n.wild
			continue
		}
		if n.lits == nil {
			n.lits = map[string]*fastNode{}
		}
		c := n.lits[s]
		if c == nil {
			c = &fastNode{}
			n.lits[s] = c
		}
		n = c
	}
	if n.routes != nil {
		return false
	}
	n.routes = leaf
	return true
}

// fastValues collects the wildcard values of a match without allocating.
type fastValues struct {
	v [maxFastValues]string
	n int
}

// match finds the pattern of path (after its leading slash).
func (n *fastNode) match(path string, vals *fastValues) *fastLeaf {
	if path == "" {
		return n.routes
	}
	seg, rest, more := strings.Cut(path, "/")
	if c := n.lits[seg]; c != nil {
		if !more {
			if c.routes != nil {
				return c.routes
			}
		} else if l := c.match(rest, vals); l != nil {
			return l
		}
	}
	if n.wild != nil && seg != "" {
		mark := vals.n
		vals.v[vals.n] = seg
		vals.n++
		if !more {
			if n.wild.routes != nil {
				return n.wild.routes
			}
		} else if l := n.wild.match(rest, vals); l != nil {
			return l
		}
		vals.n = mark
	}
	if n.rest != nil {
		vals.v[vals.n] = path
		vals.n++
		return n.rest
	}
	return nil
}

// cleanFastPath reports whether path can be matched by the fast tree:
// rooted, no empty, dot or escaped segments (the ServeMux cleans or
// unescapes those, or redirects).
func cleanFastPath(path string) bool {
	if len(path) < 2 || path[0] != '/' || path[len(path)-1] == '/' {
		return false
	}
	for i := 1; i < len(path); i++ {
		switch path[i] {
		case '%':
			return false
		case '/':
			if path[i-1] == '/' {
				return false
			}
		case '.':
			if path[i-1] == '/' && (i+1 == len(path) || path[i+1] == '/' || path[i+1] == '.' && (i+2 == len(path) || path[i+2] == '/')) {
				return false
			}
		}
	}
	return true
}

// rebuildFast rebuilds the fast tree from every registered path, or turns
// it off for good if one of them is beyond it. Callers hold a.mu.
func (a *API) rebuildFast() {
	root := &fastNode{}
	for pattern, pr := range a.paths {
		segs, ok := fastPattern(pattern)
		if !ok || !root.add(segs, pr) {
			a.fastOff = true
			a.fast.Store(nil)
			return
		}
	}
	if !a.fastOff {
		a.fast.Store(root)
	}
}

// serveFast serves r through the fast tree if it can, reporting whether it did.
func (a *API) serveFast(w http.ResponseWriter, r *http.Request) bool {
	root := a.fast.Load()
	if root == nil || r.URL.RawPath != "" || !cleanFastPath(r.URL.Path) {
		return false
	}
	var vals fastValues
	l := root.match(r.URL.Path[1:], &vals)
	if l == nil {
		return false
	}
	for i, v := range vals.v[:vals.n] {
		r.SetPathValue(l.names[i], v)
	}
	l.pr.ServeHTTP(w, r)
	return true
}
