package revops_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/workspace"
)

func TestBootstrapFinishesAStartCutShort(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	is.NoErr(err)
	defer st.Close()
	is.NoErr(st.Migrate(ctx))
	p, err := revops.New(revops.Config{Store: st})
	is.NoErr(err)

	// A first start that died right after creating the user.
	is.NoErr(st.CreateUser(ctx, &workspace.User{Email: "admin@localhost"}))
	res, err := p.Bootstrap(ctx, "admin@localhost", "Default")
	is.NoErr(err)
	is.True(res != nil && res.Key != "" && res.Workspace.Name == "Default")

	// Done now: the next start leaves it alone.
	again, err := p.Bootstrap(ctx, "admin@localhost", "Default")
	is.NoErr(err)
	is.Equal(again, nil)
	n, _, err := st.ListWorkspaces(ctx, workspace.ListFilter{}, revopsListAll())
	is.NoErr(err)
	is.Equal(len(n), 1)

	// A store used by other people is never bootstrapped.
	st2, _ := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	defer st2.Close()
	is.NoErr(st2.Migrate(ctx))
	is.NoErr(st2.CreateUser(ctx, &workspace.User{Email: "someone@example.com"}))
	p2, _ := revops.New(revops.Config{Store: st2})
	none, err := p2.Bootstrap(ctx, "admin@localhost", "Default")
	is.NoErr(err)
	is.Equal(none, nil)
}

func revopsListAll() core.ListParams { return core.ListParams{Page: 1, PerPage: 100} }
