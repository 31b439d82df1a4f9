package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
	"github.com/uptrace/bun"
)

// post is the host's own table, in the same database as revops. Every row
// carries workspace_id and every query filters by it.
type post struct {
	bun.BaseModel `bun:"table:posts"`
	ID            int64     `bun:"id,pk,autoincrement"`
	WorkspaceID   int64     `bun:"workspace_id,notnull"`
	Title         string    `bun:"title,notnull"`
	Body          string    `bun:"body,notnull"`
	Status        string    `bun:"status,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UpdatedAt     time.Time `bun:"updated_at,notnull"`
}

type postOut struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type postIn struct {
	Title  string `json:"title" validate:"required,max=200"`
	Body   string `json:"body" validate:"max=65536"`
	Status string `json:"status" validate:"omitempty,oneof=draft published"`
}

type postPatch struct {
	Title  *string `json:"title" validate:"omitempty,min=1,max=200"`
	Body   *string `json:"body" validate:"omitempty,max=65536"`
	Status *string `json:"status" validate:"omitempty,oneof=draft published"`
}

func toPost(p *post) *postOut {
	return &postOut{ID: p.ID, Title: p.Title, Body: p.Body, Status: p.Status, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

type posts struct {
	db *bun.DB
	st *sqlstore.Store // its RunInTx writes a post and its event atomically
}

// newPosts creates the posts table if needed; bun writes the DDL for the
// dialect, so one model serves SQLite and Postgres.
func newPosts(ctx context.Context, st *sqlstore.Store) (*posts, error) {
	db := st.DB()
	if _, err := db.NewCreateTable().Model((*post)(nil)).IfNotExists().
		ForeignKey(`("workspace_id") REFERENCES "revops_workspaces" ("id") ON DELETE CASCADE`).Exec(ctx); err != nil {
		return nil, fmt.Errorf("posts table: %w", err)
	}
	if _, err := db.NewCreateIndex().Model((*post)(nil)).Index("posts_workspace_idx").IfNotExists().Column("workspace_id", "id").Exec(ctx); err != nil {
		return nil, fmt.Errorf("posts index: %w", err)
	}
	return &posts{db: db, st: st}, nil
}

func (s *posts) get(ctx context.Context, wid, id int64) (*post, error) {
	p := new(post)
	err := s.db.NewSelect().Model(p).Where("workspace_id = ? AND id = ?", wid, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, core.NotFound()
	}
	return p, err
}

var postSorts = map[string]string{"id": "id", "title": "title", "status": "status", "created_at": "created_at", "updated_at": "updated_at"}

// postEvents are the webhook events of posts, registered in revops.Config.Events.
var postEvents = []webhooks.EventType{
	{Name: "post.created", Description: "A post was created.", Schema: postSchema},
	{Name: "post.updated", Description: "A post was changed.", Schema: postSchema},
	{Name: "post.deleted", Description: "A post was deleted.", Schema: []byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}`)},
}

var postSchema = []byte(`{"type":"object","required":["id","title","status"],"properties":{"id":{"type":"integer"},"title":{"type":"string"},"body":{"type":"string"},"status":{"type":"string","enum":["draft","published"]}}}`)

// change runs write and publishes its event in one transaction: the post
// and its webhook event are stored together or not at all, and the event's
// deliveries are queued once the transaction commits.
func (s *posts) change(ctx context.Context, p *revops.Platform, wid int64, typ string, write func(ctx context.Context, tx bun.Tx) (payload any, err error)) error {
	return s.st.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		payload, err := write(ctx, tx)
		if err != nil {
			return err
		}
		_, err = p.Publish(ctx, wid, typ, payload)
		return err
	})
}

func (s *posts) register(p *revops.Platform) {
	const tag = "Posts (host resource)"
	now := func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

	revops.HandleList(p, revops.Route{Method: "GET", Path: "/posts", Tag: tag, Summary: "List posts", Scope: "posts:read", Tenant: revops.TenantContext,
		Sort: []string{"id", "title", "status", "created_at", "updated_at"}, Statuses: []string{"draft", "published"}, Search: true},
		func(ctx context.Context, c *revops.Call, lp core.ListParams) ([]*postOut, int, error) {
			if err := apiCall(ctx, p, c); err != nil {
				return nil, 0, err
			}
			var rows []post
			q := s.db.NewSelect().Model(&rows).Where("workspace_id = ?", c.WorkspaceID())
			f := lp.Filter
			if f.Status != "" {
				q.Where("status = ?", f.Status)
			}
			if f.Search != "" {
				like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(f.Search)) + "%"
				q.Where(`(LOWER(title) LIKE ? ESCAPE '\' OR LOWER(body) LIKE ? ESCAPE '\')`, like, like)
			}
			for col, t := range map[string]time.Time{"created_at >": f.CreatedAfter, "created_at <": f.CreatedBefore, "updated_at >": f.UpdatedAfter, "updated_at <": f.UpdatedBefore} {
				if !t.IsZero() {
					q.Where("? ?", bun.Safe(col), t)
				}
			}
			for _, o := range lp.Sort {
				dir := "ASC"
				if o.Desc {
					dir = "DESC"
				}
				q.OrderExpr("? ?", bun.Ident(postSorts[o.Field]), bun.Safe(dir))
			}
			q.OrderExpr("id ASC").Limit(int64(lp.PerPage)).Offset(int64(lp.Offset()))
			total, err := q.ScanAndCount(ctx)
			out := make([]*postOut, len(rows))
			for i := range rows {
				out[i] = toPost(&rows[i])
			}
			return out, int(total), err
		})

	revops.Handle(p, revops.Route{Method: "POST", Path: "/posts", Tag: tag, Summary: "Create a post", Scope: "posts:write", Tenant: revops.TenantContext,
		Status: http.StatusCreated, Message: "Post created successfully."},
		func(ctx context.Context, c *revops.Call, in *postIn) (*postOut, error) {
			if err := apiCall(ctx, p, c); err != nil {
				return nil, err
			}
			if strings.TrimSpace(in.Title) == "" {
				return nil, core.Invalid("title", "The title field is required.")
			}
			if in.Status == "" {
				in.Status = "draft"
			}
			t := now()
			row := &post{WorkspaceID: c.WorkspaceID(), Title: in.Title, Body: in.Body, Status: in.Status, CreatedAt: t, UpdatedAt: t}
			err := s.change(ctx, p, c.WorkspaceID(), "post.created", func(ctx context.Context, tx bun.Tx) (any, error) {
				if _, err := tx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
					return nil, err
				}
				// The plan's post limit, checked and used in the post's own
				// transaction: over the limit (403 feature_limit_reached)
				// the post is rolled back, and a failed insert uses nothing.
				_, err := p.Consume(ctx, c.WorkspaceID(), "posts", 1, fmt.Sprintf("post-%d", row.ID))
				return toPost(row), err
			})
			if err != nil {
				return nil, err
			}
			return toPost(row), nil
		})

	item := func(ctx context.Context, c *revops.Call) (*post, error) {
		if err := apiCall(ctx, p, c); err != nil {
			return nil, err
		}
		id, err := c.PathID("id")
		if err != nil {
			return nil, err
		}
		return s.get(ctx, c.WorkspaceID(), id)
	}

	revops.Handle(p, revops.Route{Method: "GET", Path: "/posts/{id}", Tag: tag, Summary: "Get a post", Scope: "posts:read", Tenant: revops.TenantContext},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (*postOut, error) {
			row, err := item(ctx, c)
			if err != nil {
				return nil, err
			}
			return toPost(row), nil
		})

	revops.Handle(p, revops.Route{Method: "PATCH", Path: "/posts/{id}", Tag: tag, Summary: "Update a post", Scope: "posts:write", Tenant: revops.TenantContext,
		Message: "Post updated successfully."},
		func(ctx context.Context, c *revops.Call, in *postPatch) (*postOut, error) {
			row, err := item(ctx, c)
			if err != nil {
				return nil, err
			}
			if in.Title != nil {
				if strings.TrimSpace(*in.Title) == "" {
					return nil, core.Invalid("title", "The title field is required.")
				}
				row.Title = *in.Title
			}
			if in.Body != nil {
				row.Body = *in.Body
			}
			if in.Status != nil {
				row.Status = *in.Status
			}
			row.UpdatedAt = now()
			err = s.change(ctx, p, c.WorkspaceID(), "post.updated", func(ctx context.Context, tx bun.Tx) (any, error) {
				_, err := tx.NewUpdate().Model(row).WherePK().Where("workspace_id = ?", c.WorkspaceID()).Exec(ctx)
				return toPost(row), err
			})
			if err != nil {
				return nil, err
			}
			return toPost(row), nil
		})

	// Deleting needs posts:write, as do the other changes.
	revops.Handle(p, revops.Route{Method: "DELETE", Path: "/posts/{id}", Tag: tag, Summary: "Delete a post", Scope: "posts:write", Tenant: revops.TenantContext,
		Status: http.StatusNoContent},
		func(ctx context.Context, c *revops.Call, _ *revops.NoBody) (revops.NoBody, error) {
			row, err := item(ctx, c)
			if err != nil {
				return revops.NoBody{}, err
			}
			return revops.NoBody{}, s.change(ctx, p, c.WorkspaceID(), "post.deleted", func(ctx context.Context, tx bun.Tx) (any, error) {
				if _, err := tx.NewDelete().Model(row).WherePK().Where("workspace_id = ?", c.WorkspaceID()).Exec(ctx); err != nil {
					return nil, err
				}
				// The post is given back to the plan with the delete.
				_, err := p.RecordUsage(ctx, c.WorkspaceID(), billing.UsageInput{Feature: "posts", Quantity: -1, EventID: fmt.Sprintf("post-%d-deleted", row.ID)})
				return map[string]any{"id": row.ID}, err
			})
		})
}

// apiCall counts one call against the plan's api_calls (a monthly quota):
// past it, the answer is 403 feature_limit_reached.
func apiCall(ctx context.Context, p *revops.Platform, c *revops.Call) error {
	_, err := p.Consume(ctx, c.WorkspaceID(), "api_calls", 1, "")
	return err
}

// exportCSV writes the workspace's posts as CSV. It is an ordinary
// http.Handler: revops.CallFrom tells it the workspace the pipeline checked.
func (ps *posts) exportCSV(p *revops.Platform) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := revops.CallFrom(r.Context())
		var rows []post
		err := ps.db.NewSelect().Model(&rows).Where("workspace_id = ?", c.WorkspaceID()).OrderExpr("id ASC").Limit(10_000).Scan(r.Context())
		if err != nil {
			p.WriteError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "title", "status", "created_at"})
		for _, p := range rows {
			cw.Write([]string{strconv.FormatInt(p.ID, 10), p.Title, p.Status, p.CreatedAt.UTC().Format(time.RFC3339)})
		}
		cw.Flush()
	})
}
