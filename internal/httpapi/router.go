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
	lits     map[string]*fastNode
	wild     *fastNode // {name}
	wildName string
	rest     *pathRoutes // {name...}
	restName string
	routes   *pathRoutes // a pattern ends here
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
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			if rest, multi := strings.CutSuffix(name, "..."); multi {
				if n.rest != nil || i != len(segs)-1 {
					return false
				}
				n.rest, n.restName = pr, rest
				return true
			}
			if n.wild == nil {
				n.wild, n.wildName = &fastNode{}, name
			} else if n.wildName != name {
				// Same position, other name: the ServeMux keys its tree
				// by position too, but keep the tree simple.
				return false
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
	n.routes = pr
	return true
}

type fastValue struct{ name, value string }

// fastValues collects the wildcard values of a match without allocating.
type fastValues struct {
	v [maxFastValues]fastValue
	n int
}

// match finds the routes of path (after its leading slash).
func (n *fastNode) match(path string, vals *fastValues) *pathRoutes {
	if path == "" {
		return n.routes
	}
	seg, rest, more := strings.Cut(path, "/")
	if c := n.lits[seg]; c != nil {
		if !more {
			if c.routes != nil {
				return c.routes
			}
		} else if pr := c.match(rest, vals); pr != nil {
			return pr
		}
	}
	if n.wild != nil && seg != "" {
		mark := vals.n
		vals.v[vals.n] = fastValue{n.wildName, seg}
		vals.n++
		if !more {
			if n.wild.routes != nil {
				return n.wild.routes
			}
		} else if pr := n.wild.match(rest, vals); pr != nil {
			return pr
		}
		vals.n = mark
	}
	if n.rest != nil {
		vals.v[vals.n] = fastValue{n.restName, path}
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
	pr := root.match(r.URL.Path[1:], &vals)
	if pr == nil {
		return false
	}
	for _, v := range vals.v[:vals.n] {
		r.SetPathValue(v.name, v.value)
	}
	pr.ServeHTTP(w, r)
	return true
}
