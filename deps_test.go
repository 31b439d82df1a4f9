package revops_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/revopsdev/revops"

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// forbiddenInDomain are drivers and frameworks no domain package may reach,
// even transitively (DESIGN.md rule 2, issue 2: also net/http).
var forbiddenInDomain = []string{
	"github.com/uptrace/bun", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/mattn/go-sqlite3",
	"github.com/stripe/stripe-go", "github.com/riverqueue/river", "github.com/ory/fosite",
	"net/http", module + "/adapters", module + "/internal",
}

// smallLibs are the pure libraries a domain package may import directly.
var smallLibs = []string{"github.com/go-playground/validator/v10", "golang.org/x/time/rate", "golang.org/x/crypto/argon2",
	"github.com/pquerna/otp", "github.com/pquerna/otp/totp"} // otp: RFC 6238 codes and the enrolment QR (pure Go)

func isStd(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }

func hasPrefixPath(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

func kind(p string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
	switch {
	case p == module:
		return "root"
	case rel == "core":
		return "leaf"
	case strings.HasPrefix(rel, "internal/"):
		return "internal"
	case strings.HasPrefix(rel, "adapters/"):
		return "adapter"
	case strings.HasPrefix(rel, "examples/"), strings.HasPrefix(rel, "bench"), rel == "storetest":
		return "support"
	}
	return "domain"
}

// violations applies DESIGN.md's dependency rules 1–4 to package infos.
func violations(pkgs []pkgInfo) []string {
	var out []string
	bad := func(p pkgInfo, format string, dep string) {
		out = append(out, p.ImportPath+": "+strings.ReplaceAll(format, "%s", dep))
	}
	for _, p := range pkgs {
		switch kind(p.ImportPath) {
		case "leaf":
			for _, d := range p.Deps {
				if !isStd(d) {
					bad(p, "the leaf package may import only the standard library, not %s", d)
				}
			}
		case "domain":
			for _, d := range p.Deps {
				for _, f := range forbiddenInDomain {
					if hasPrefixPath(d, f) {
						bad(p, "a domain package must not depend on %s", d)
					}
				}
				if d == module {
					bad(p, "a domain package must not import the root package (%s)", d)
				}
			}
			for _, d := range p.Imports {
				if !isStd(d) && !hasPrefixPath(d, module) && !slices.Contains(smallLibs, d) {
					bad(p, "a domain package may import only small pure libraries, not %s", d)
				}
			}
		case "root", "internal":
			for _, d := range p.Deps {
				if hasPrefixPath(d, module+"/adapters") {
					bad(p, "the root package and internal/ must not import adapters (%s); adapters arrive through Config", d)
				}
			}
		case "adapter":
			own := strings.Join(strings.SplitN(p.ImportPath, "/", 6)[:5], "/") // module/adapters/<name>
			for _, d := range p.Imports {
				if hasPrefixPath(d, module+"/adapters") && !hasPrefixPath(d, own) {
					bad(p, "an adapter must not import another adapter (%s)", d)
				}
				if d == module || hasPrefixPath(d, module+"/internal") {
					bad(p, "an adapter must not import the root package or internal/ (%s)", d)
				}
			}
		}
	}
	return out
}

func TestDependencyRule(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkgInfo
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	kinds := map[string]int{}
	for _, p := range pkgs {
		kinds[kind(p.ImportPath)]++
	}
	if kinds["leaf"] != 1 || kinds["domain"] < 3 || kinds["adapter"] < 1 {
		t.Fatalf("package classification looks wrong: %v", kinds)
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// The checker itself must catch each kind of violation.
func TestDependencyRuleCatchesViolations(t *testing.T) {
	cases := []pkgInfo{
		{ImportPath: module + "/core", Deps: []string{"fmt", "github.com/uptrace/bun"}},
		{ImportPath: module + "/keys", Imports: []string{"net/http"}, Deps: []string{"net/http"}},
		{ImportPath: module + "/keys", Imports: []string{"github.com/jackc/pgx/v5"}, Deps: []string{"github.com/jackc/pgx/v5"}},
		{ImportPath: module + "/keys", Imports: []string{"github.com/some/bigframework"}},
		{ImportPath: module + "/workspace", Imports: []string{module}, Deps: []string{module}},
		{ImportPath: module, Deps: []string{module + "/adapters/sqlstore"}},
		{ImportPath: module + "/internal/httpapi", Deps: []string{module + "/adapters/sqlstore"}},
		{ImportPath: module + "/adapters/sqlstore", Imports: []string{module + "/adapters/stripe"}},
		{ImportPath: module + "/adapters/sqlstore", Imports: []string{module}},
	}
	for _, c := range cases {
		if len(violations([]pkgInfo{c})) == 0 {
			t.Errorf("no violation reported for %+v", c)
		}
	}
	ok := []pkgInfo{
		{ImportPath: module + "/keys", Imports: []string{"context", module + "/core", "github.com/go-playground/validator/v10"}, Deps: []string{"context", module + "/core"}},
		{ImportPath: module + "/adapters/sqlstore", Imports: []string{module + "/keys", "github.com/uptrace/bun"}},
	}
	if v := violations(ok); len(v) > 0 {
		t.Errorf("false positives: %v", v)
	}
}
