package storetest

import (
	"cmp"
	"fmt"
	"time"

	"github.com/revopsdev/revops/core"
)

// sortField is one sortable JSON field of a list, as the suite expects the
// store to order it.
type sortField[T any] struct {
	name string
	cmp  func(a, b T) int // ascending, for two non-null values
	null func(T) bool     // nil when the field is never null
}

func byString[T any](name string, f func(T) string) sortField[T] {
	return sortField[T]{name: name, cmp: func(a, b T) int { return cmp.Compare(f(a), f(b)) }}
}

func byInt[T any](name string, f func(T) int64) sortField[T] {
	return sortField[T]{name: name, cmp: func(a, b T) int { return cmp.Compare(f(a), f(b)) }}
}

func byTime[T any](name string, f func(T) time.Time) sortField[T] {
	return sortField[T]{name: name, cmp: func(a, b T) int { return f(a).Compare(f(b)) }}
}

func byTimePtr[T any](name string, f func(T) *time.Time) sortField[T] {
	return sortField[T]{
		name: name,
		cmp:  func(a, b T) int { return f(a).Compare(*f(b)) },
		null: func(v T) bool { return f(v) == nil },
	}
}

type orderKey[T any] struct {
	f    sortField[T]
	desc bool
}

// precedes reports whether a may come right before b under keys, with NULLs
// last in either direction and ties broken by id ascending.
func precedes[T any](a, b T, id func(T) int64, keys []orderKey[T]) bool {
	for _, k := range keys {
		if k.f.null != nil {
			na, nb := k.f.null(a), k.f.null(b)
			if na != nb {
				return nb
			}
			if na {
				continue
			}
		}
		c := k.f.cmp(a, b)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return id(a) < id(b)
}

// lister lists one page.
type lister[T any] func(p core.ListParams) ([]T, int, error)

// checkOrder requires items to be in the order keys define.
func checkOrder[T any](e *env, what string, items []T, id func(T) int64, keys ...orderKey[T]) {
	e.t.Helper()
	for i := 1; i < len(items); i++ {
		if !precedes(items[i-1], items[i], id, keys) {
			e.t.Errorf("%s: item %d (id %d) is out of order after item %d (id %d); ids in order returned: %v",
				what, i, id(items[i]), i-1, id(items[i-1]), ids(items, id))
			return
		}
	}
}

func ids[T any](items []T, id func(T) int64) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// checkSorts lists every item with each field ascending and descending and
// checks the order, the total, and that paging through the same sort (two
// per page) yields the same sequence. The data must hold at least two
// distinct values of each field, or the check would prove nothing.
func checkSorts[T any](e *env, what string, total int, list lister[T], id func(T) int64, fields ...sortField[T]) {
	e.t.Helper()
	for _, f := range fields {
		for _, d := range []bool{false, true} {
			name := fmt.Sprintf("%s sorted by %s", what, f.name)
			if d {
				name += " desc"
			}
			s := core.Sort{Field: f.name, Desc: d}
			items, n, err := list(page(1, 100, s))
			e.must(err, name)
			if n != total || len(items) != total {
				e.t.Errorf("%s: got %d items and total %d, want %d", name, len(items), n, total)
				continue
			}
			checkOrder(e, name, items, id, orderKey[T]{f, d})
			distinct := false
			for i := 1; i < len(items); i++ {
				a, b := items[i-1], items[i]
				if f.null != nil && (f.null(a) || f.null(b)) {
					distinct = distinct || f.null(a) != f.null(b)
					continue
				}
				distinct = distinct || f.cmp(a, b) != 0
			}
			if !distinct {
				e.t.Fatalf("%s: the suite's data has no two distinct values (suite bug)", name)
			}
			var paged []T
			for p := 1; p <= (total+1)/2; p++ {
				got, n, err := list(page(p, 2, s))
				e.must(err, name)
				if n != total {
					e.t.Errorf("%s page %d: total %d, want %d", name, p, n, total)
				}
				paged = append(paged, got...)
			}
			if fmt.Sprint(ids(paged, id)) != fmt.Sprint(ids(items, id)) {
				e.t.Errorf("%s: pages of 2 give ids %v, one page gives %v", name, ids(paged, id), ids(items, id))
			}
		}
	}
}

// checkPaging checks page/per_page/total over a list of exactly total items
// in default order (ids ascending as given in wantIDs).
func checkPaging[T any](e *env, what string, list lister[T], id func(T) int64, wantIDs []int64) {
	e.t.Helper()
	total := len(wantIDs)
	if total < 5 {
		e.t.Fatalf("%s: checkPaging needs at least 5 items (suite bug)", what)
	}
	// Defaults: page 1, 25 per page, id ascending.
	all, n, err := list(core.ListParams{})
	e.must(err, what+" with zero ListParams")
	if n != total || fmt.Sprint(ids(all, id)) != fmt.Sprint(wantIDs) {
		e.t.Errorf("%s with zero ListParams: got ids %v total %d, want %v total %d", what, ids(all, id), n, wantIDs, total)
	}
	per := 2
	last := (total + per - 1) / per
	for p := 1; p <= last+1; p++ {
		got, n, err := list(page(p, per))
		e.must(err, fmt.Sprintf("%s page %d", what, p))
		if n != total {
			e.t.Errorf("%s page %d: total %d, want %d", what, p, n, total)
		}
		lo, hi := min((p-1)*per, total), min(p*per, total)
		if fmt.Sprint(ids(got, id)) != fmt.Sprint(wantIDs[lo:hi]) {
			e.t.Errorf("%s page %d of %d per page: got ids %v, want %v", what, p, per, ids(got, id), wantIDs[lo:hi])
		}
	}
	// A page far beyond the end is empty but still counts everything.
	got, n, err := list(page(1000, 10))
	e.must(err, what+" page 1000")
	if len(got) != 0 || n != total {
		e.t.Errorf("%s page 1000: got %d items total %d, want 0 items total %d", what, len(got), n, total)
	}
}

// checkIDs requires a list call to return exactly wantIDs in that order,
// with total len(wantIDs).
func checkIDs[T any](e *env, what string, list lister[T], p core.ListParams, id func(T) int64, wantIDs ...int64) {
	e.t.Helper()
	checkPage(e, what, list, p, id, len(wantIDs), wantIDs...)
}

// checkPage requires a list call to return exactly wantIDs in that order,
// with total wantTotal.
func checkPage[T any](e *env, what string, list lister[T], p core.ListParams, id func(T) int64, wantTotal int, wantIDs ...int64) {
	e.t.Helper()
	got, n, err := list(p)
	if err != nil {
		e.t.Errorf("%s: unexpected error: %v", what, err)
		return
	}
	if wantIDs == nil {
		wantIDs = []int64{}
	}
	if n != wantTotal || fmt.Sprint(ids(got, id)) != fmt.Sprint(wantIDs) {
		e.t.Errorf("%s: got ids %v total %d, want %v total %d", what, ids(got, id), n, wantIDs, wantTotal)
	}
}
