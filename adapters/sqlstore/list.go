package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/core"
)

// listSpec describes how one resource is listed. Everything in it is a
// constant of this package: user input reaches SQL only as bound arguments,
// and sort fields only through the sorts allow-list.
type listSpec struct {
	columns  string            // select list
	from     string            // FROM … JOIN …
	sorts    map[string]string // JSON field name -> column
	tieBreak string            // unique column, ascending, ends every ORDER BY
	search   []string          // columns matched by Filter.Search
	created  string            // column of created_after/before, "" if none
	updated  string            // column of updated_after/before, "" if none
}

// listQuery collects WHERE conditions and their arguments.
type listQuery struct {
	where []string
	args  []any
}

func (q *listQuery) add(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

// likeEscape is the escape character of every LIKE pattern: portable (no
// backslash, whose meaning in string literals differs between databases).
const likeEscape = "!"

// containsPattern returns a LIKE pattern matching s anywhere, lower-cased,
// with LIKE's wildcards in s matched literally.
func containsPattern(s string) string {
	r := strings.NewReplacer(likeEscape, likeEscape+likeEscape, "%", likeEscape+"%", "_", likeEscape+"_")
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// applyFilter adds the common filters of p (created, updated, search) to q.
// Status is resource-specific and handled by the caller.
func (spec *listSpec) applyFilter(q *listQuery, f core.Filter) error {
	timeFilters := []struct {
		field, col, op string
		at             time.Time
	}{
		{"created_after", spec.created, ">", f.CreatedAfter},
		{"created_before", spec.created, "<", f.CreatedBefore},
		{"updated_after", spec.updated, ">", f.UpdatedAfter},
		{"updated_before", spec.updated, "<", f.UpdatedBefore},
	}
	for _, tf := range timeFilters {
		if tf.at.IsZero() {
			continue
		}
		if tf.col == "" {
			return core.Invalid(tf.field, "This resource cannot be filtered by "+tf.field+".")
		}
		q.add(tf.col+" "+tf.op+" ?", ts(tf.at))
	}
	if f.Search != "" {
		if len(spec.search) == 0 {
			return core.Invalid("search", "This resource cannot be searched.")
		}
		pattern := containsPattern(f.Search)
		parts := make([]string, len(spec.search))
		for i, col := range spec.search {
			parts[i] = "LOWER(" + col + ") LIKE ? ESCAPE '" + likeEscape + "'"
			q.args = append(q.args, pattern)
		}
		q.where = append(q.where, "("+strings.Join(parts, " OR ")+")")
	}
	return nil
}

// orderBy renders p.Sort through the allow-list. NULLs sort last in either
// direction; ties are broken by spec.tieBreak ascending.
func (spec *listSpec) orderBy(sorts []core.Sort) (string, error) {
	parts := make([]string, 0, len(sorts)+1)
	for _, s := range sorts {
		col, ok := spec.sorts[s.Field]
		if !ok {
			return "", core.Invalid("sort", fmt.Sprintf("Cannot sort by %q.", s.Field))
		}
		dir := " ASC"
		if s.Desc {
			dir = " DESC"
		}
		parts = append(parts, col+dir+" NULLS LAST")
	}
	parts = append(parts, spec.tieBreak+" ASC")
	return " ORDER BY " + strings.Join(parts, ", "), nil
}

// run counts the matching rows, then scans one page of them into dest (a
// pointer to a slice of row structs).
func (spec *listSpec) run(ctx context.Context, db bun.IDB, q *listQuery, p core.ListParams, dest any) (int, error) {
	p = p.Normalized()
	order, err := spec.orderBy(p.Sort)
	if err != nil {
		return 0, err
	}
	where := ""
	if len(q.where) > 0 {
		where = " WHERE " + strings.Join(q.where, " AND ")
	}
	var total int
	if err := db.NewRaw("SELECT COUNT(*) FROM "+spec.from+where, q.args...).Scan(ctx, &total); err != nil {
		return 0, err
	}
	if total == 0 || p.Offset() >= total {
		return total, nil
	}
	args := append(append([]any{}, q.args...), p.PerPage, p.Offset())
	query := "SELECT " + spec.columns + " FROM " + spec.from + where + order + " LIMIT ? OFFSET ?"
	if err := db.NewRaw(query, args...).Scan(ctx, dest); err != nil {
		return 0, err
	}
	return total, nil
}

// listRows applies p's filter to q, runs spec and converts each row: the
// shared body of the List methods.
func listRows[R any, T any](ctx context.Context, db bun.IDB, spec *listSpec, q *listQuery, p core.ListParams, what string, conv func(*R) T) ([]T, int, error) {
	if err := spec.applyFilter(q, p.Filter); err != nil {
		return nil, 0, err
	}
	var rows []R
	total, err := spec.run(ctx, db, q, p, &rows)
	if err != nil {
		return nil, 0, fail("list "+what, err, "")
	}
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = conv(&rows[i])
	}
	return out, total, nil
}
