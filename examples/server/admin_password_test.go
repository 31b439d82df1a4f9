package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func loginStatus(t *testing.T, s *server, password string) int {
	t.Helper()
	st, _ := call(t, "POST", s.base+"/api/v1/auth/login", "", map[string]any{"email": "admin@localhost", "password": password})
	return st
}

func TestAdminPasswordGiven(t *testing.T) {
	db := filepath.Join(t.TempDir(), "revops.db")
	t.Setenv("REVOPS_ADMIN_PASSWORD", "")
	s := start(t, "-db", db, "-admin-password", "a long admin password")
	defer s.stop(t)
	if strings.Contains(s.out.String(), "a long admin password") {
		t.Fatal("a given password was printed")
	}
	if st := loginStatus(t, s, "a long admin password"); st != 200 {
		t.Fatalf("login with -admin-password: %d", st)
	}
	if st := loginStatus(t, s, "something else entirely"); st != 401 {
		t.Fatalf("login with a wrong password: %d", st)
	}
}

func TestAdminPasswordFromEnv(t *testing.T) {
	t.Setenv("REVOPS_ADMIN_PASSWORD", "password from the environment")
	s := start(t, "-db", filepath.Join(t.TempDir(), "revops.db"))
	defer s.stop(t)
	if st := loginStatus(t, s, "password from the environment"); st != 200 {
		t.Fatalf("login with REVOPS_ADMIN_PASSWORD: %d", st)
	}
}

var generatedRE = regexp.MustCompile(`Password of admin@localhost \(generated[^\n]*\n\n    (\S+)\n`)

// startGenerated starts a first server on a new database without a given
// password and returns it, its database and the password it printed.
func startGenerated(t *testing.T) (*server, string, string) {
	t.Helper()
	t.Setenv("REVOPS_ADMIN_PASSWORD", "")
	db := filepath.Join(t.TempDir(), "revops.db")
	s := start(t, "-db", db)
	m := generatedRE.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no generated password printed:\n%s", s.out)
	}
	return s, db, m[1]
}

func TestAdminPasswordGenerated(t *testing.T) {
	s, db, password := startGenerated(t)
	if len(password) < 20 {
		t.Fatalf("generated password %q is short", password)
	}
	if st := loginStatus(t, s, password); st != 200 {
		t.Fatalf("login with the generated password: %d", st)
	}
	s.stop(t)
	// Printed once: a second start prints none, and the password still works.
	s2 := start(t, "-db", db)
	defer s2.stop(t)
	if strings.Contains(s2.out.String(), "Password of") {
		t.Fatal("the password was printed again")
	}
	if st := loginStatus(t, s2, password); st != 200 {
		t.Fatalf("login after a restart: %d", st)
	}
}

func TestAdminPasswordTooShortIsRefusedBeforeBootstrap(t *testing.T) {
	t.Setenv("REVOPS_ADMIN_PASSWORD", "")
	db := filepath.Join(t.TempDir(), "revops.db")
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db, "-admin-password", "short"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-admin-password") {
		t.Fatalf("run with a short password: %v", err)
	}
	// Nothing was created: a later start bootstraps (and prints the key).
	s := start(t, "-db", db)
	defer s.stop(t)
	if !strings.Contains(s.out.String(), "Bootstrap API key") {
		t.Fatal("the refused start left a bootstrap behind")
	}
}

// TestKeyReissueKeepsThePassword: admin@localhost left without a personal
// key gets a new one on the next start, and keeps the password in use.
func TestKeyReissueKeepsThePassword(t *testing.T) {
	s, db, password := startGenerated(t)
	st, body := call(t, "POST", s.base+"/api/v1/auth/login", "", map[string]any{"email": "admin@localhost", "password": password})
	if st != 200 {
		t.Fatalf("login: %d %v", st, body)
	}
	token := body["data"].(map[string]any)["access_token"].(string)
	st, body = call(t, "GET", s.base+"/api/v1/user/api-keys", token, nil)
	if st != 200 || len(body["data"].([]any)) != 1 {
		t.Fatalf("personal keys: %d %v", st, body)
	}
	id := body["data"].([]any)[0].(map[string]any)["id"]
	if st, _ = call(t, "DELETE", s.base+"/api/v1/user/api-keys/"+fmtID(id), token, nil); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	s.stop(t)

	s2 := start(t, "-db", db)
	defer s2.stop(t)
	out := s2.out.String()
	if !strings.Contains(out, "had no personal key: issued a new one") || strings.Contains(out, "Created workspace") || strings.Contains(out, "Password of") {
		t.Fatalf("second start printed:\n%s", out)
	}
	if st := loginStatus(t, s2, password); st != 200 {
		t.Fatalf("the password in use was replaced: login %d", st)
	}
}

func fmtID(v any) string { return strconv.FormatInt(int64(v.(float64)), 10) }

// TestPlainHTTPSessionsAndRootJWKS: -sessions-plain-http drops Secure from
// the session cookie (served over http here), and the signing keys are at
// the root's /.well-known/jwks.json too.
func TestPlainHTTPSessionsAndRootJWKS(t *testing.T) {
	for _, plain := range []bool{false, true} {
		args := []string{"-db", filepath.Join(t.TempDir(), "revops.db"), "-admin-password", "a long admin password"}
		if plain {
			args = append(args, "-sessions-plain-http")
		}
		s := start(t, args...)
		body := strings.NewReader(`{"email":"admin@localhost","password":"a long admin password","session":"cookie"}`)
		res, err := http.Post(s.base+"/api/v1/auth/login", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		var session string
		for _, c := range res.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "revops_session=") {
				session = c
			}
		}
		if res.StatusCode != 200 || session == "" || strings.Contains(session, "; Secure") == plain {
			t.Fatalf("plain %v: login %d, session cookie %q", plain, res.StatusCode, session)
		}
		res, err = http.Get(s.base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(keys), `"kty":"OKP"`) {
			t.Fatalf("root jwks: %d %s", res.StatusCode, keys)
		}
		s.stop(t)
	}
}
