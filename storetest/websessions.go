package storetest

import (
	"time"

	"github.com/revopsdev/revops/login"
)

func webSessionTests() []test {
	return []test{
		{"WebSessions/Lifecycle", testWebSessionLifecycle},
		{"WebSessions/List", testWebSessionList},
	}
}

func (e *env) loginSession(userID int64, created time.Time) *login.Session {
	e.t.Helper()
	s := &login.Session{UserID: userID, CreatedAt: created}
	e.must(e.s.CreateSession(e.ctx, s), "CreateSession")
	return s
}

func testWebSessionLifecycle(e *env) {
	u, other := e.user("web"), e.user("web-other")
	sess := e.loginSession(u.ID, at(0))
	w := &login.WebSession{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), CreatedAt: at(0), ExpiresAt: at(24 * time.Hour),
		UserAgent: "Mozilla/5.0 test", IP: "192.0.2.1"}
	e.must(e.s.CreateWebSession(e.ctx, w), "CreateWebSession")
	if !w.LastSeenAt.Equal(at(0)) {
		e.t.Fatalf("LastSeenAt %s, want CreatedAt when zero", w.LastSeenAt)
	}
	got, err := e.s.WebSessionByHash(e.ctx, w.Hash)
	e.must(err, "WebSessionByHash")
	e.same("web session read back", *got, *w)

	e.conflict(e.s.CreateWebSession(e.ctx, &login.WebSession{SessionID: e.loginSession(u.ID, at(0)).ID, UserID: u.ID, Hash: w.Hash, ExpiresAt: at(time.Hour)}), "a duplicate hash")
	e.conflict(e.s.CreateWebSession(e.ctx, &login.WebSession{SessionID: sess.ID, UserID: u.ID, Hash: e.hash(), ExpiresAt: at(time.Hour)}), "a second web session of one session")
	e.notFound(e.s.CreateWebSession(e.ctx, &login.WebSession{SessionID: 999_999, UserID: u.ID, Hash: e.hash(), ExpiresAt: at(time.Hour)}), "a web session of a missing session")
	e.notFound(e.s.CreateWebSession(e.ctx, &login.WebSession{SessionID: e.loginSession(other.ID, at(0)).ID, UserID: u.ID, Hash: e.hash(), ExpiresAt: at(time.Hour)}),
		"a web session of another user's session")
	_, err = e.s.WebSessionByHash(e.ctx, e.hash())
	e.notFound(err, "WebSessionByHash of an unknown hash")

	e.must(e.s.TouchWebSession(e.ctx, sess.ID, at(time.Hour)), "TouchWebSession")
	e.must(e.s.TouchWebSession(e.ctx, sess.ID, at(time.Minute)), "TouchWebSession backwards")
	got, _ = e.s.WebSessionByHash(e.ctx, w.Hash)
	if !got.LastSeenAt.Equal(at(time.Hour)) {
		e.t.Fatalf("LastSeenAt %s after touches at +1h and +1m, want +1h (never backwards)", got.LastSeenAt)
	}
	e.notFound(e.s.TouchWebSession(e.ctx, 999_999, at(0)), "TouchWebSession of a missing web session")

	// Revoked: still found by hash (the caller judges it), with its session.
	e.must(e.s.RevokeSession(e.ctx, sess.ID, at(2*time.Hour)), "RevokeSession")
	got, err = e.s.WebSessionByHash(e.ctx, w.Hash)
	e.must(err, "WebSessionByHash of a revoked session")
	if got.SessionID != sess.ID || got.SessionRevokedAt == nil || !got.SessionRevokedAt.Equal(at(2*time.Hour)) {
		e.t.Fatalf("revoked web session %+v, want its session's revocation at +2h", got)
	}
}

func testWebSessionList(e *env) {
	u, other := e.user("lister"), e.user("lister-other")
	mk := func(userID int64, created, expires time.Duration) *login.WebSession {
		w := &login.WebSession{SessionID: e.loginSession(userID, at(created)).ID, UserID: userID, Hash: e.hash(), CreatedAt: at(created), ExpiresAt: at(expires)}
		e.must(e.s.CreateWebSession(e.ctx, w), "CreateWebSession")
		return w
	}
	old := mk(u.ID, 0, 48*time.Hour)
	newer := mk(u.ID, time.Hour, 48*time.Hour)
	expired := mk(u.ID, 2*time.Hour, 3*time.Hour)
	revoked := mk(u.ID, 3*time.Hour, 48*time.Hour)
	e.must(e.s.RevokeSession(e.ctx, revoked.SessionID, at(4*time.Hour)), "RevokeSession")
	mk(other.ID, 0, 48*time.Hour)

	list, err := e.s.ListWebSessions(e.ctx, u.ID, at(5*time.Hour))
	e.must(err, "ListWebSessions")
	var ids []int64
	for _, w := range list {
		ids = append(ids, w.SessionID)
	}
	e.same("live web sessions, newest first (no expired, revoked or other user's)", ids, []int64{newer.SessionID, old.SessionID})
	// At exactly ExpiresAt a web session is over.
	list, err = e.s.ListWebSessions(e.ctx, u.ID, at(3*time.Hour))
	e.must(err, "ListWebSessions")
	for _, w := range list {
		if w.SessionID == expired.SessionID {
			e.t.Fatal("a web session is listed at its ExpiresAt")
		}
	}
	none, err := e.s.ListWebSessions(e.ctx, 999_999, at(0))
	e.must(err, "ListWebSessions of a missing user")
	if len(none) != 0 {
		e.t.Fatalf("%d web sessions of a missing user", len(none))
	}
}
