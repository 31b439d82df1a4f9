package revops_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/twofactor"
)

// withFastPassword sets testPassword with a cheap argon2id hash (64 KiB,
// one pass): verification reads the parameters from the stored hash, so
// the many logins of these tests do not each cost 64 MiB and three passes
// (which under -race adds minutes). The password hashing itself is tested
// in login/ and auth_http_test.go.
func (e *env) withFastPassword(uid int64) {
	e.t.Helper()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(testPassword), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	hash := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
	if err := e.store.SetUserPassword(context.Background(), uid, hash); err != nil {
		e.t.Fatal(err)
	}
}

// codeAt is the authenticator app's code of secret at t.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nextCode moves the clock to the next 30-second step and returns its code,
// so that every code a test sends is fresh unless it means to replay one.
func (e *env) nextCode(secret string) string {
	e.t.Helper()
	e.clock.Advance(30 * time.Second)
	return codeAt(e.t, secret, e.clock.Now())
}

// enableTOTP enrols and confirms the user of key, returning the secret and
// the recovery codes.
func (e *env) enableTOTP(key string) (string, []string) {
	e.t.Helper()
	secret := e.do("POST", "/auth/totp/enroll", key, nil).must(e.t, 201).str("secret")
	r := e.do("POST", "/auth/totp/confirm", key, map[string]any{"code": e.nextCode(secret)}).must(e.t, 200)
	var codes []string
	for _, c := range r.data()["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return secret, codes
}

func (e *env) loginTOTP(email, code string) *resp {
	e.t.Helper()
	return e.do("POST", "/auth/login", "", map[string]any{"email": email, "password": testPassword, "totp_code": code})
}

// lastEvent is the newest event of action outside any workspace.
func (e *env) lastEvent(action string) *audit.Event {
	e.t.Helper()
	list, _, err := e.p.Audit().List(context.Background(), audit.Filter{Action: action}, core.ListParams{Page: 1, PerPage: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(list) == 0 {
		e.t.Fatalf("no %s event", action)
	}
	return &list[0]
}

var recoveryRE = regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`)

func TestTOTPEnrolConfirmAndLogin(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	const email = "admin@localhost"

	st := e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()
	is.Equal(st["enabled"], false)
	is.Equal(st["pending"], false)

	// Enrolment: the secret, its otpauth URL and a QR code of that URL.
	en := e.do("POST", "/auth/totp/enroll", e.key, nil).must(t, 201)
	is.Equal(en.Body["message"], "TOTP enrolment created successfully.")
	secret := en.str("secret")
	is.Equal(len(secret), 32) // 160 bits in base32
	u, err := url.Parse(en.str("otpauth_url"))
	is.NoErr(err)
	is.Equal(u.Scheme+"://"+u.Host, "otpauth://totp")
	is.Equal(u.Query().Get("secret"), secret)
	is.Equal(u.Query().Get("issuer"), "revops API")
	is.True(strings.Contains(u.Path, email))
	raw, err := base64.StdEncoding.DecodeString(en.str("qr_png"))
	is.NoErr(err)
	img, err := png.Decode(bytes.NewReader(raw))
	is.NoErr(err)
	is.Equal(img.Bounds().Dx(), 256)
	is.Equal(e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()["pending"], true)
	ev := e.lastEvent(audit.TOTPEnrolled)
	is.Equal(ev.TargetID, fmt.Sprint(e.owner.ID))

	// Pending is not active: login needs no code yet.
	e.login(email, testPassword).must(t, 200)

	// Bad input and wrong codes are 422 with the field named.
	r := e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": "12ab"}).must(t, 422, "validation_failed")
	is.True(r.fieldErr("code") != "")
	e.do("POST", "/auth/totp/confirm", e.key, map[string]any{}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": 123456}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": "123456", "extra": 1}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/confirm", e.key, `{"code": `).must(t, 400, "bad_request")
	wrong := fmt.Sprintf("%06d", (atoi(codeAt(t, secret, e.clock.Now()))+1)%1_000_000)
	r = e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": wrong}).must(t, 422, "validation_failed")
	is.True(strings.Contains(r.fieldErr("code"), "invalid"))

	// Confirmation enables it and returns ten distinct recovery codes once.
	confirmCode := e.nextCode(secret)
	r = e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": confirmCode[:3] + " " + confirmCode[3:]}).must(t, 200)
	is.True(strings.Contains(r.Body["message"].(string), "recovery codes"))
	codes := r.data()["recovery_codes"].([]any)
	is.Equal(len(codes), 10)
	seen := map[string]bool{}
	for _, c := range codes {
		is.True(recoveryRE.MatchString(c.(string)))
		seen[c.(string)] = true
	}
	is.Equal(len(seen), 10)
	e.do("POST", "/auth/totp/confirm", e.key, map[string]any{"code": e.nextCode(secret)}).must(t, 409, "conflict")
	e.do("POST", "/auth/totp/enroll", e.key, nil).must(t, 409, "conflict")
	st = e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()
	is.Equal(st["enabled"], true)
	is.Equal(st["recovery_codes_remaining"], 10.0)
	is.True(st["enabled_at"] != nil)
	is.Equal(e.lastEvent(audit.TOTPEnabled).Actor.ID, e.owner.ID)

	// Login now needs the code: without it a clear 401 and no tokens.
	r = e.login(email, testPassword).must(t, 401, "totp_required")
	is.Equal(r.Header.Get("WWW-Authenticate"), "Bearer") // as every 401
	is.True(strings.Contains(r.Body["message"].(string), "totp_code"))
	is.True(r.Body["data"] == nil && !strings.Contains(string(r.Raw), "access_token"))
	is.Equal(e.lastEvent(audit.LoginFailed).Metadata["reason"], "totp_required")
	// A wrong password is still the one answer, code or not, and spends no code.
	code := e.nextCode(secret)
	e.do("POST", "/auth/login", "", map[string]any{"email": email, "password": "wrong password", "totp_code": code}).must(t, 401, "unauthorized")
	// The right code works once.
	tok := e.loginTOTP(email, code).must(t, 200).str("access_token")
	e.do("GET", "/auth/me", tok, nil).must(t, 200)
	r = e.loginTOTP(email, code).must(t, 401, "unauthorized")
	is.True(!strings.Contains(string(r.Raw), "access_token"))
	is.Equal(e.lastEvent(audit.LoginFailed).Metadata["reason"], "wrong_totp_code")
	// An earlier step's code, still inside the skew window, is refused once a later one was used.
	e.loginTOTP(email, codeAt(t, secret, e.clock.Now().Add(-30*time.Second))).must(t, 401, "unauthorized")
	// The next step's code is accepted (clock drift) and then spent.
	ahead := codeAt(t, secret, e.clock.Now().Add(30*time.Second))
	e.loginTOTP(email, ahead).must(t, 200)
	e.loginTOTP(email, codeAt(t, secret, e.clock.Now())).must(t, 401, "unauthorized") // earlier than the one used

	// Malformed codes are 422 naming totp_code.
	e.clock.Advance(time.Minute)
	r = e.loginTOTP(email, "12-ab").must(t, 422, "validation_failed")
	is.True(r.fieldErr("totp_code") != "")
	e.loginTOTP(email, strings.Repeat("1", 65)).must(t, 422, "validation_failed")

	// A recovery code signs in once, in any spelling, and is audited.
	rc := codes[0].(string)
	e.loginTOTP(email, strings.ToUpper(rc)).must(t, 200)
	ev = e.lastEvent(audit.TOTPRecoveryCodeUsed)
	is.Equal(ev.Actor.ID, e.owner.ID)
	is.Equal(ev.Metadata["during"], "login")
	e.loginTOTP(email, rc).must(t, 401, "unauthorized")
	is.Equal(e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()["recovery_codes_remaining"], 9.0)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestTOTPConcurrentUseOfOneCode: of two logins racing with one code
// exactly one gets tokens.
func TestTOTPConcurrentUseOfOneCode(t *testing.T) {
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	secret, _ := e.enableTOTP(e.key)
	for round := range 2 {
		e.clock.Advance(time.Minute) // refill the buckets; a new step
		code := codeAt(t, secret, e.clock.Now())
		var wg sync.WaitGroup
		status := make([]int, 2)
		for i := range status {
			wg.Go(func() { status[i] = e.loginTOTP("admin@localhost", code).Status })
		}
		wg.Wait()
		ok := 0
		for _, s := range status {
			switch s {
			case 200:
				ok++
			case 401:
			default:
				t.Fatalf("round %d: status %d", round, s)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent logins with one code succeeded (%v), want exactly 1", round, ok, status)
		}
	}
	// Without password hashing in the way the race is tighter: five
	// disables (the per-user limit) with one code; exactly one succeeds.
	e.clock.Advance(time.Minute)
	code := codeAt(t, secret, e.clock.Now())
	var wg sync.WaitGroup
	status := make([]int, 5)
	start := make(chan struct{})
	for i := range status {
		wg.Go(func() {
			<-start
			status[i] = e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": code}).Status
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range status {
		if s == 200 {
			ok++
		} else if s != 422 && s != 409 {
			t.Fatalf("a concurrent disable: status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of five concurrent disables with one code succeeded (%v), want exactly 1", ok, status)
	}
}

// TestTOTPAttemptsRateLimited: code checks are limited per user (5 a
// minute by default), whatever route makes them.
func TestTOTPAttemptsRateLimited(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	secret, _ := e.enableTOTP(e.key)
	e.clock.Advance(time.Minute)
	code := codeAt(t, secret, e.clock.Now())
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
	for range 3 {
		e.loginTOTP("admin@localhost", wrong).must(t, 401, "unauthorized")
	}
	for range 2 {
		e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": wrong}).must(t, 422, "validation_failed")
	}
	// The bucket is empty: even the right code waits, and nothing is spent.
	r := e.loginTOTP("admin@localhost", code).must(t, 429, "rate_limit_exceeded")
	is.True(r.Body["retry_after"].(float64) >= 1)
	// The headers are this bucket's, as the body is.
	is.Equal(r.Header.Get("Retry-After"), fmt.Sprint(r.Body["retry_after"]))
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "5")
	is.Equal(r.Header.Get("X-RateLimit-Remaining"), "0")
	is.Equal(e.lastEvent(audit.LoginFailed).Metadata["reason"], "totp_throttled")
	r = e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": code}).must(t, 429, "rate_limit_exceeded")
	is.Equal(r.Header.Get("X-RateLimit-Limit"), "5")
	is.True(r.Header.Get("Retry-After") != "")
	e.clock.Advance(12 * time.Second) // one attempt refills every 12 s
	e.loginTOTP("admin@localhost", code).must(t, 200)
}

func TestTOTPDisable(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": "123456"}).must(t, 409, "conflict") // not enabled
	secret, codes := e.enableTOTP(e.key)

	e.do("POST", "/auth/totp/disable", e.key, map[string]any{}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": "nope"}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": "aaaaa-aaaaa"}).must(t, 422, "validation_failed") // not one of ours
	r := e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": e.nextCode(secret)}).must(t, 200)
	is.Equal(r.data()["enabled"], false)
	is.Equal(r.Body["message"], "Two-factor authentication disabled.")
	is.Equal(e.lastEvent(audit.TOTPDisabled).Metadata["method"], "totp")
	e.login("admin@localhost", testPassword).must(t, 200) // no code needed any more
	// The old recovery codes died with it.
	e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": codes[1]}).must(t, 409, "conflict")

	// Re-enrol (a new secret), then disable with a recovery code.
	secret2, codes2 := e.enableTOTP(e.key)
	is.True(secret2 != secret)
	e.do("POST", "/auth/totp/disable", e.key, map[string]any{"code": codes2[3]}).must(t, 200)
	is.Equal(e.lastEvent(audit.TOTPRecoveryCodeUsed).Metadata["during"], "disable")
	is.Equal(e.lastEvent(audit.TOTPDisabled).Metadata["method"], "recovery_code")

	// Workspace keys have no user: every two-factor route refuses them.
	_, wkey := e.newWorkspace("Machines")
	e.do("GET", "/auth/totp", wkey, nil).must(t, 403, "access_denied")
	e.do("POST", "/auth/totp/enroll", wkey, nil).must(t, 403, "access_denied")
	// And a personal key without the totp scope cannot touch it.
	narrow := e.do("POST", "/user/api-keys", e.key, map[string]any{"name": "narrow", "scopes": []string{"workspaces:read"}}).must(t, 201).str("key")
	e.do("POST", "/auth/totp/enroll", narrow, nil).must(t, 403, "access_denied")
}

// TestTOTPReplaceRecoveryCodes: a current code replaces every recovery
// code with ten new ones; a recovery code or a replayed code cannot.
func TestTOTPReplaceRecoveryCodes(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.withFastPassword(e.owner.ID)
	e.do("POST", "/auth/totp/recovery-codes", e.key, map[string]any{"code": "123456"}).must(t, 409, "conflict") // not enabled
	secret, old := e.enableTOTP(e.key)
	e.do("POST", "/auth/totp/recovery-codes", e.key, map[string]any{"code": old[0]}).must(t, 422, "validation_failed")
	e.do("POST", "/auth/totp/recovery-codes", e.key, map[string]any{}).must(t, 422, "validation_failed")
	e.loginTOTP("admin@localhost", old[1]).must(t, 200) // one old code used

	code := e.nextCode(secret)
	r := e.do("POST", "/auth/totp/recovery-codes", e.key, map[string]any{"code": code}).must(t, 200)
	is.Equal(r.Body["message"], "New recovery codes issued. Store them: they are shown only once, and the old ones no longer work.")
	var fresh []string
	for _, c := range r.data()["recovery_codes"].([]any) {
		fresh = append(fresh, c.(string))
		is.True(recoveryRE.MatchString(c.(string)))
	}
	is.Equal(len(fresh), 10)
	is.Equal(e.lastEvent(audit.TOTPRecoveryCodesReplaced).Metadata["recovery_codes"], 10.0)
	is.Equal(e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()["recovery_codes_remaining"], 10.0)
	// The code it spent cannot be replayed, here or at login.
	e.do("POST", "/auth/totp/recovery-codes", e.key, map[string]any{"code": code}).must(t, 422, "validation_failed")
	e.loginTOTP("admin@localhost", code).must(t, 401, "unauthorized")
	// Old codes, used or not, are gone; new ones work.
	e.clock.Advance(time.Minute) // a fresh allowance of code checks
	e.loginTOTP("admin@localhost", old[2]).must(t, 401, "unauthorized")
	e.loginTOTP("admin@localhost", old[1]).must(t, 401, "unauthorized")
	e.loginTOTP("admin@localhost", fresh[0]).must(t, 200)
	is.Equal(e.do("GET", "/auth/totp", e.key, nil).must(t, 200).data()["recovery_codes_remaining"], 9.0)
}

// TestTOTPWorkspacePolicyRequired: in a workspace that requires two-factor
// authentication, members without it cannot act, by any user credential
// and on any workspace route, but can still enrol; workspace keys go on.
func TestTOTPWorkspacePolicyRequired(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wid, wkey := e.newWorkspace("Strict")
	ws := fmt.Sprintf("/workspaces/%d", wid)
	u, ukey := e.newUser("member@example.com")
	if err := e.store.AddMember(context.Background(), memberOf(wid, u.ID, "admin")); err != nil {
		t.Fatal(err)
	}
	e.withFastPassword(u.ID)
	tok := e.login("member@example.com", testPassword).must(t, 200).str("access_token")
	e.do("GET", ws, ukey, nil).must(t, 200)
	e.do("PUT", ws+"/totp-policy", e.key, map[string]any{"policy": "optional"}).must(t, 200)
	e.do("GET", ws, ukey, nil).must(t, 200) // optional blocks no one

	e.do("PUT", ws+"/totp-policy", e.key, map[string]any{"policy": "required"}).must(t, 200)
	blocked := func(cred string) {
		t.Helper()
		for _, c := range []struct {
			method, path string
			body         any
			h            []hdr
		}{
			{"GET", ws, nil, nil},
			{"GET", ws + "/members", nil, nil},
			{"POST", ws + "/api-keys", map[string]any{"name": "x"}, nil},
			{"GET", "/api-keys", nil, []hdr{wsHdr(wid)}},
			{"GET", "/entitlements/summary", nil, []hdr{wsHdr(wid)}},
			{"PUT", ws + "/totp-policy", map[string]any{"policy": "off"}, nil},
		} {
			r := e.do(c.method, c.path, cred, c.body, c.h...).must(t, 403, "totp_enrollment_required")
			is.True(strings.Contains(r.Body["message"].(string), "POST /auth/totp/enroll"))
		}
	}
	blocked(ukey)
	blocked(tok)
	// The owner has no two-factor either: blocked too, even from undoing the policy.
	blocked(e.key)
	// A machine key of the workspace is not a user: it goes on.
	e.do("GET", ws+"/members", wkey, nil).must(t, 200)
	// Other workspaces of the user are not affected; a workspace the user
	// is not in stays 404, never 403.
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), e.key, nil).must(t, 200)
	e.do("GET", fmt.Sprintf("/workspaces/%d", e.ws.ID), ukey, nil).must(t, 404, "not_found")
	// Outside any workspace the user can still see themselves and enrol.
	e.do("GET", "/auth/me", tok, nil).must(t, 200)
	e.do("GET", "/workspaces", ukey, nil).must(t, 200)
	// ... but not the members of the workspace that blocks them.
	for _, x := range e.do("GET", "/workspaces?include=members,owner", ukey, nil).must(t, 200).list() {
		w := x.(map[string]any)
		if _, shown := w["members"]; shown && w["id"] == float64(wid) {
			t.Fatalf("a blocked member lists the members: %v", w)
		}
	}
	secret, _ := e.enableTOTP(tok)
	// Enabled on this instance: admitted at once, by either credential.
	e.do("GET", ws, ukey, nil).must(t, 200)
	e.do("POST", ws+"/api-keys", tok, map[string]any{"name": "now allowed"}).must(t, 201)
	blocked(e.key) // the owner still is
	// Disabling blocks again at once.
	e.do("POST", "/auth/totp/disable", ukey, map[string]any{"code": e.nextCode(secret)}).must(t, 200)
	blocked(ukey)
	e.do("PUT", ws+"/totp-policy", wkey, map[string]any{"policy": "off"}).must(t, 200)
	e.do("GET", ws, ukey, nil).must(t, 200)
}

// barrierStore holds every TOTP read until n callers have read, so that
// racing checks all see the same last step before any of them writes: only
// the store's conditional update can then keep a code single-use.
type barrierStore struct {
	*sqlstore.Store
	wg *sync.WaitGroup
}

func (b barrierStore) TOTP(ctx context.Context, userID int64) (*twofactor.Secret, error) {
	s, err := b.Store.TOTP(ctx, userID)
	b.wg.Done()
	b.wg.Wait()
	return s, err
}

func TestTOTPCodeSingleUseUnderRace(t *testing.T) {
	e := newEnv(t)
	secret, codes := e.enableTOTP(e.key)
	for _, c := range []struct {
		name, code string
		want       twofactor.Method
	}{{"totp", e.nextCode(secret), twofactor.MethodTOTP}, {"recovery", codes[0], twofactor.MethodRecovery}} {
		const n = 8
		var barrier sync.WaitGroup
		barrier.Add(n)
		svc, err := twofactor.New(twofactor.Config{Store: barrierStore{e.store, &barrier}, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		methods := make([]twofactor.Method, n)
		for i := range n {
			wg.Go(func() { methods[i], errs[i] = svc.Check(context.Background(), e.owner.ID, c.code, "code") })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil && methods[i] == c.want:
				ok++
			case err != nil && !errors.Is(err, core.ErrValidation):
				t.Errorf("%s: a losing check: %v, want the invalid-code error", c.name, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%s: %d of %d racing checks of one code succeeded, want exactly 1", c.name, ok, n)
		}
	}
}

// TestTOTPSecretsSealedAtRest: with Config.TOTP.EncryptionKey the stored
// secret is AES-GCM sealed, and codes still verify; a platform without the
// key cannot use it (and says so in the log, answering 500).
func TestTOTPSecretsSealedAtRest(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	e := newEnv(t, func(c *revops.Config) { c.TOTP.EncryptionKey = key })
	e.withFastPassword(e.owner.ID)
	secret, _ := e.enableTOTP(e.key)
	var stored string
	if err := e.store.DB().NewRaw("SELECT secret FROM revops_totp WHERE user_id = ?", e.owner.ID).Scan(context.Background(), &stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "v1:") || strings.Contains(stored, secret) {
		t.Fatalf("stored secret %q, want it sealed", stored)
	}
	e.loginTOTP("admin@localhost", e.nextCode(secret)).must(t, 200)

	// Without the key the sealed secret is unusable: a server error, never a pass.
	plain, err := twofactor.New(twofactor.Config{Store: e.store, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Check(context.Background(), e.owner.ID, e.nextCode(secret), "code"); err == nil || errors.Is(err, core.ErrValidation) {
		t.Fatalf("checking a sealed secret without the key: %v, want an internal error", err)
	}
}
