package scope_test

import (
	"fmt"
	"testing"

	"github.com/matryer/is"
	"github.com/revopsdev/revops/scope"
)

func TestSetAllows(t *testing.T) {
	cases := []struct {
		set  scope.Set
		req  string
		want bool
	}{
		{scope.Set{"*"}, "posts:delete", true},
		{scope.Set{"read"}, "posts:read", true},
		{scope.Set{"read"}, "posts:write", false},
		{scope.Set{"posts:read"}, "posts:read", true},
		{scope.Set{"posts:read"}, "users:read", false},
		{scope.Set{"posts:*"}, "posts:delete", true},
		{scope.Set{"posts:*"}, "users:delete", false},
		{scope.Set{}, "posts:read", false},
	}
	for _, c := range cases {
		if got := c.set.Allows(c.req); got != c.want {
			t.Errorf("%v allows %s = %v, want %v", c.set, c.req, got, c.want)
		}
	}
}

func TestCatalogValidate(t *testing.T) {
	is := is.New(t)
	c, err := scope.NewCatalog("workspaces", "posts")
	is.NoErr(err)
	for _, ok := range []string{"*", "read", "write", "delete", "posts:read", "posts:*", "workspaces:delete"} {
		is.NoErr(c.Validate(ok))
	}
	for _, bad := range []string{"", "posts", "posts:admin", "users:read", ":read", "Posts:read", "posts:read:x", "all"} {
		if c.Validate(bad) == nil {
			t.Errorf("Validate(%q) should fail", bad)
		}
	}
	_, err = scope.NewCatalog("Bad Name")
	is.True(err != nil)
}

func TestRolesAndGrant(t *testing.T) {
	is := is.New(t)
	roles := scope.DefaultRoles()
	is.True(roles[scope.Owner].Allows("workspaces:delete"))
	is.True(!roles[scope.Admin].Allows("workspaces:delete"))
	is.True(roles[scope.Admin].Allows("api-keys:write"))
	is.True(roles[scope.Member].Allows("posts:write"))
	is.True(!roles[scope.Member].Allows("api-keys:write"))
	is.True(!roles[scope.Member].Allows("members:delete"))

	// A personal key with * held by a member is still limited by the role.
	g := scope.Grant{scope.Set{"*"}, roles[scope.Member]}
	is.True(g.Allows("posts:read"))
	is.True(!g.Allows("workspaces:write"))
	// A read-only key held by an owner cannot write.
	g = scope.Grant{scope.Set{"read"}, roles[scope.Owner]}
	is.True(!g.Allows("posts:write"))
	is.True(!scope.Grant{}.Allows("posts:read"))
}

func TestCovers(t *testing.T) {
	is := is.New(t)
	c, _ := scope.NewCatalog("posts", "users")
	holder := scope.Set{"posts:*", "users:read"}
	_, ok := c.Covers(holder, "posts:write")
	is.True(ok)
	_, ok = c.Covers(holder, "read")
	is.True(ok)
	missing, ok := c.Covers(holder, "write")
	is.True(!ok)
	is.Equal(missing, "users:write")
	_, ok = c.Covers(holder, "*")
	is.True(!ok)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*", "read", "posts:read", "posts:*", "a:b:c", ":", ""} {
		f.Add(s)
	}
	c, _ := scope.NewCatalog("posts")
	f.Fuzz(func(t *testing.T, s string) {
		if scope.Parse(s) != nil {
			return
		}
		// Anything that parses must expand without panicking and only to known scopes.
		for _, e := range c.Expand(s) {
			if !(scope.Set{s}).Allows(e) {
				t.Fatalf("%q expanded to %q it does not allow", s, e)
			}
		}
	})
}

func ExampleSet_Allows() {
	keyScopes := scope.Set{"read", "posts:write"}
	fmt.Println(keyScopes.Allows("workspaces:read"), keyScopes.Allows("posts:write"), keyScopes.Allows("posts:delete"))
	// Output: true true false
}
