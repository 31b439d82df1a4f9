package storetest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/login"
)

func loginTests() []test {
	return []test{
		{"Login/Credentials", testLoginCredentials},
		{"Login/RefreshTokens", testLoginRefreshTokens},
		{"Login/RefreshRace", testLoginRefreshRace},
		{"Login/RefreshLookup", testLoginRefreshLookup},
		{"Login/TokenSessions", testLoginTokenSessions},
		{"Login/SharedSigningKey", testSharedSigningKey},
		{"Login/SharedSigningKeyRace", testSharedSigningKeyRace},
	}
}

func testLoginCredentials(e *env) {
	u := e.user("cred")
	got, hash, err := e.s.UserCredentials(e.ctx, u.Email)
	e.must(err, "UserCredentials")
	if got.ID != u.ID || hash != "" {
		e.t.Fatalf("a new user: %+v hash %q, want no password", got, hash)
	}
	e.must(e.s.SetUserPassword(e.ctx, u.ID, "$argon2id$x"), "SetUserPassword")
	if _, hash, _ = e.s.UserCredentials(e.ctx, u.Email); hash != "$argon2id$x" {
		e.t.Fatalf("hash %q after SetUserPassword", hash)
	}
	_, _, err = e.s.UserCredentials(e.ctx, "nobody@example.test")
	e.notFound(err, "UserCredentials of an unknown email")
	e.notFound(e.s.SetUserPassword(e.ctx, 999_999, "x"), "SetUserPassword of a missing user")
}

func testLoginRefreshTokens(e *env) {
	u := e.user("rt")
	sess := &login.Session{UserID: u.ID, CreatedAt: at(0)}
	e.must(e.s.CreateSession(e.ctx, sess), "CreateSession")
	rt := &login.RefreshToken{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	e.must(e.s.CreateRefreshToken(e.ctx, rt), "CreateRefreshToken")
	e.conflict(e.s.CreateRefreshToken(e.ctx, &login.RefreshToken{SessionID: sess.ID, UserID: u.ID, Hash: rt.Hash, ExpiresAt: at(time.Hour)}), "a duplicate hash")

	used, err := e.s.UseRefreshToken(e.ctx, rt.Hash, at(time.Minute))
	e.must(err, "UseRefreshToken")
	if used.ID != rt.ID || used.SessionID != sess.ID || used.UsedAt == nil || !used.UsedAt.Equal(at(time.Minute)) || !used.ExpiresAt.Equal(at(time.Hour)) {
		e.t.Fatalf("used token %+v", used)
	}
	again, err := e.s.UseRefreshToken(e.ctx, rt.Hash, at(2*time.Minute))
	if !errors.Is(err, core.ErrConflict) || again == nil || again.SessionID != sess.ID || !again.UsedAt.Equal(at(time.Minute)) {
		e.t.Fatalf("second use: %+v %v, want the token and a conflict, first use time kept", again, err)
	}
	_, err = e.s.UseRefreshToken(e.ctx, e.hash(), at(0))
	e.notFound(err, "UseRefreshToken of an unknown hash")

	e.must(e.s.RevokeSession(e.ctx, sess.ID, at(3*time.Minute)), "RevokeSession")
	e.must(e.s.RevokeSession(e.ctx, sess.ID, at(4*time.Minute)), "RevokeSession again")
	got, err := e.s.Session(e.ctx, sess.ID)
	e.must(err, "Session")
	if got.UserID != u.ID || got.RevokedAt == nil || !got.RevokedAt.Equal(at(3*time.Minute)) || !got.CreatedAt.Equal(at(0)) {
		e.t.Fatalf("revoked session %+v, want the first revocation time", got)
	}
	e.notFound(e.s.RevokeSession(e.ctx, 999_999, at(0)), "RevokeSession of a missing session")
	_, err = e.s.Session(e.ctx, 999_999)
	e.notFound(err, "Session missing")
	e.notFound(e.s.CreateSession(e.ctx, &login.Session{UserID: 999_999}), "a session of a missing user")
}

// testLoginRefreshRace: of many concurrent rotations of one token exactly one wins.
func testLoginRefreshRace(e *env) {
	u := e.user("race")
	sess := &login.Session{UserID: u.ID}
	e.must(e.s.CreateSession(e.ctx, sess), "CreateSession")
	rt := &login.RefreshToken{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), ExpiresAt: at(time.Hour)}
	e.must(e.s.CreateRefreshToken(e.ctx, rt), "CreateRefreshToken")
	errs := parallel(16, func(int) error {
		_, err := e.s.UseRefreshToken(e.ctx, rt.Hash, at(time.Minute))
		return err
	})
	e.oneWins(errs, core.ErrConflict, "rotation of one refresh token")
}

// testLoginRefreshLookup: RefreshToken reads a token, used or not, without
// spending it; DeleteRefreshToken removes exactly one token.
func testLoginRefreshLookup(e *env) {
	u := e.user("lookup")
	sess := &login.Session{UserID: u.ID, CreatedAt: at(0)}
	e.must(e.s.CreateSession(e.ctx, sess), "CreateSession")
	rt := &login.RefreshToken{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	e.must(e.s.CreateRefreshToken(e.ctx, rt), "CreateRefreshToken")
	other := &login.RefreshToken{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	e.must(e.s.CreateRefreshToken(e.ctx, other), "CreateRefreshToken")

	got, err := e.s.RefreshToken(e.ctx, rt.Hash)
	e.must(err, "RefreshToken")
	if got.ID != rt.ID || got.SessionID != sess.ID || got.UserID != u.ID || got.Hash != rt.Hash || got.UsedAt != nil ||
		!got.CreatedAt.Equal(at(0)) || !got.ExpiresAt.Equal(at(time.Hour)) {
		e.t.Fatalf("RefreshToken: %+v, want %+v", got, rt)
	}
	// Reading does not spend it: the one rotation still wins.
	_, err = e.s.UseRefreshToken(e.ctx, rt.Hash, at(time.Minute))
	e.must(err, "UseRefreshToken after RefreshToken")
	if got, err = e.s.RefreshToken(e.ctx, rt.Hash); err != nil || got.UsedAt == nil || !got.UsedAt.Equal(at(time.Minute)) {
		e.t.Fatalf("a used token: %+v %v, want it with its use time", got, err)
	}
	_, err = e.s.RefreshToken(e.ctx, e.hash())
	e.notFound(err, "RefreshToken of an unknown hash")

	e.must(e.s.DeleteRefreshToken(e.ctx, rt.Hash), "DeleteRefreshToken")
	_, err = e.s.RefreshToken(e.ctx, rt.Hash)
	e.notFound(err, "RefreshToken after DeleteRefreshToken")
	e.notFound(e.s.DeleteRefreshToken(e.ctx, rt.Hash), "DeleteRefreshToken twice")
	if _, err := e.s.RefreshToken(e.ctx, other.Hash); err != nil {
		e.t.Fatalf("DeleteRefreshToken removed another token of the session: %v", err)
	}
}

// testSharedSigningKey: the first candidate is kept; later and concurrent
// callers all get that one key back, whole (it signs what the first signs).
func testSharedSigningKey(e *env) {
	newKey := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(nil)
		e.must(err, "GenerateKey")
		return k
	}
	first := newKey()
	got, err := e.s.SharedSigningKey(e.ctx, first)
	e.must(err, "SharedSigningKey")
	if !bytes.Equal(got, first) {
		e.t.Fatal("the first SharedSigningKey did not keep its candidate")
	}
	again, err := e.s.SharedSigningKey(e.ctx, newKey())
	e.must(err, "SharedSigningKey again")
	if !bytes.Equal(again, first) {
		e.t.Fatal("a second SharedSigningKey replaced the stored key")
	}
	msg := []byte("signed by one, verified by the other")
	if !ed25519.Verify(first.Public().(ed25519.PublicKey), msg, ed25519.Sign(again, msg)) {
		e.t.Fatal("the returned key does not sign like the stored one")
	}
	if _, err := e.s.SharedSigningKey(e.ctx, ed25519.PrivateKey("short")); err == nil {
		e.t.Fatal("SharedSigningKey accepted a malformed candidate")
	}
}

// testSharedSigningKeyRace: instances starting at once on an empty store
// end up with one key.
func testSharedSigningKeyRace(e *env) {
	keys := make([]ed25519.PrivateKey, 8)
	errs := parallel(len(keys), func(i int) error {
		_, cand, err := ed25519.GenerateKey(nil)
		if err != nil {
			return err
		}
		keys[i], err = e.s.SharedSigningKey(e.ctx, cand)
		return err
	})
	for i, err := range errs {
		e.must(err, "SharedSigningKey in a race")
		if !bytes.Equal(keys[i], keys[0]) {
			e.t.Fatalf("racing instances got different keys (%d and 0)", i)
		}
	}
}

// testLoginTokenSessions: a session is listed while it holds an unused,
// unexpired refresh token and is not revoked, once, with that token's
// times; newest first; another user's never.
func testLoginTokenSessions(e *env) {
	u, other := e.user("ts"), e.user("ts-other")
	session := func(uid int64, created time.Duration) *login.Session {
		s := &login.Session{UserID: uid, CreatedAt: at(created)}
		e.must(e.s.CreateSession(e.ctx, s), "CreateSession")
		return s
	}
	token := func(s *login.Session, created, expires time.Duration) *login.RefreshToken {
		t := &login.RefreshToken{SessionID: s.ID, UserID: s.UserID, Hash: e.hash(), CreatedAt: at(created), ExpiresAt: at(expires)}
		e.must(e.s.CreateRefreshToken(e.ctx, t), "CreateRefreshToken")
		return t
	}
	older, newer := session(u.ID, 0), session(u.ID, time.Hour)
	spent := token(older, 0, 24*time.Hour)
	_, err := e.s.UseRefreshToken(e.ctx, spent.Hash, at(2*time.Hour))
	e.must(err, "UseRefreshToken")
	token(older, 2*time.Hour, 26*time.Hour) // its rotation: the live one
	token(newer, time.Hour, 25*time.Hour)
	expired := session(u.ID, 2*time.Hour)
	token(expired, 2*time.Hour, 3*time.Hour)
	revoked := session(u.ID, 3*time.Hour)
	token(revoked, 3*time.Hour, 27*time.Hour)
	e.must(e.s.RevokeSession(e.ctx, revoked.ID, at(4*time.Hour)), "RevokeSession")
	session(u.ID, 4*time.Hour) // no token at all
	cookie := session(u.ID, 4*time.Hour)
	token(cookie, 4*time.Hour, 28*time.Hour)
	e.must(e.s.CreateWebSession(e.ctx, &login.WebSession{SessionID: cookie.ID, UserID: u.ID, Hash: e.hash(), CreatedAt: at(4 * time.Hour),
		ExpiresAt: at(28 * time.Hour)}), "CreateWebSession") // a cookie login: listed as a web session
	token(session(other.ID, 5*time.Hour), 5*time.Hour, 29*time.Hour)

	list, err := e.s.ListTokenSessions(e.ctx, u.ID, at(5*time.Hour))
	e.must(err, "ListTokenSessions")
	if len(list) != 2 || list[0].SessionID != newer.ID || list[1].SessionID != older.ID {
		e.t.Fatalf("token sessions %+v, want the newer then the older session, nothing else", list)
	}
	want := login.TokenSession{SessionID: older.ID, UserID: u.ID, CreatedAt: at(0), LastRefreshAt: at(2 * time.Hour), ExpiresAt: at(26 * time.Hour)}
	e.same("the rotated session", list[1], want)
	list, err = e.s.ListTokenSessions(e.ctx, u.ID, at(25*time.Hour))
	e.must(err, "ListTokenSessions later")
	if len(list) != 1 || list[0].SessionID != older.ID {
		e.t.Fatalf("token sessions at +25h %+v, want only the older one (the newer's token expired)", list)
	}
	none, err := e.s.ListTokenSessions(e.ctx, 999_999, at(0))
	e.must(err, "ListTokenSessions of a missing user")
	if len(none) != 0 {
		e.t.Fatalf("a missing user has token sessions: %+v", none)
	}
}
