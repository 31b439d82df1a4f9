package core

import "time"

// Page and per-page bounds of spec 001.
const (
	DefaultPerPage = 25
	MaxPerPage     = 100
)

// Sort is one sort key; Field is the resource's JSON field name, already
// checked against the resource's allow-list by the HTTP kernel.
type Sort struct {
	Field string
	Desc  bool
}

// Filter holds spec 001's common list filters. Zero values mean "no filter".
type Filter struct {
	Status        string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	UpdatedAfter  time.Time
	UpdatedBefore time.Time
	Search        string
}

// ListParams is what a list endpoint passes to a store.
type ListParams struct {
	Page    int // 1-based
	PerPage int
	Sort    []Sort
	Filter  Filter
}

// Normalized returns p with defaults applied to a zero page or per-page.
func (p ListParams) Normalized() ListParams {
	if p.Page < 1 {
		p.Page = 1
	}
	if p.PerPage < 1 {
		p.PerPage = DefaultPerPage
	}
	if p.PerPage > MaxPerPage {
		p.PerPage = MaxPerPage
	}
	return p
}

// Offset is the number of rows before the page.
func (p ListParams) Offset() int {
	p = p.Normalized()
	return (p.Page - 1) * p.PerPage
}
