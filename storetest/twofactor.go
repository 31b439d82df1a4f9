package storetest

import (
	"errors"
	"time"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/twofactor"
)

func totpTests() []test {
	return []test{
		{"TOTP/Lifecycle", testTOTPLifecycle},
		{"TOTP/StepCAS", testTOTPStepCAS},
		{"TOTP/StepRace", testTOTPStepRace},
		{"TOTP/EnableRace", testTOTPEnableRace},
		{"TOTP/RecoveryCodes", testTOTPRecoveryCodes},
		{"TOTP/RecoveryRace", testTOTPRecoveryRace},
		{"TOTP/ReplaceRecoveryCodes", testTOTPReplaceRecoveryCodes},
		{"TOTP/ReplaceRace", testTOTPReplaceRace},
	}
}

// enabledTOTP enrols and enables a user at step 100 with the given codes.
func (e *env) enabledTOTP(name string, hashes ...string) int64 {
	u := e.user(name)
	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "SECRET" + name, CreatedAt: at(0)}), "PutTOTP")
	e.must(e.s.EnableTOTP(e.ctx, u.ID, 100, hashes, at(time.Minute)), "EnableTOTP")
	return u.ID
}

func testTOTPLifecycle(e *env) {
	u := e.user("totp")
	_, err := e.s.TOTP(e.ctx, u.ID)
	e.notFound(err, "TOTP before enrolment")
	e.notFound(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: 999_999, Secret: "X", CreatedAt: at(0)}), "PutTOTP of a missing user")
	e.notFound(e.s.EnableTOTP(e.ctx, u.ID, 1, nil, at(0)), "EnableTOTP without an enrolment")
	e.notFound(e.s.UseTOTPStep(e.ctx, u.ID, 1), "UseTOTPStep without an enrolment")
	e.notFound(e.s.DeleteTOTP(e.ctx, u.ID), "DeleteTOTP without an enrolment")

	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "FIRST", CreatedAt: at(0)}), "PutTOTP")
	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "SECOND", CreatedAt: at(time.Second)}), "PutTOTP replacing a pending one")
	got, err := e.s.TOTP(e.ctx, u.ID)
	e.must(err, "TOTP")
	if got.UserID != u.ID || got.Secret != "SECOND" || got.EnabledAt != nil || got.LastStep != 0 || !got.CreatedAt.Equal(at(time.Second)) || got.RecoveryRemaining != 0 {
		e.t.Fatalf("pending enrolment %+v, want the second secret, not enabled", got)
	}
	// A pending enrolment accepts no step: it must be enabled first.
	e.notFound(e.s.UseTOTPStep(e.ctx, u.ID, 5), "UseTOTPStep on a pending enrolment")

	e.must(e.s.EnableTOTP(e.ctx, u.ID, 42, []string{e.hash(), e.hash()}, at(time.Minute)), "EnableTOTP")
	got, err = e.s.TOTP(e.ctx, u.ID)
	e.must(err, "TOTP")
	if got.EnabledAt == nil || !got.EnabledAt.Equal(at(time.Minute)) || got.LastStep != 42 || got.RecoveryRemaining != 2 || got.Secret != "SECOND" {
		e.t.Fatalf("enabled enrolment %+v, want enabled at +1m, step 42, 2 recovery codes", got)
	}
	e.conflict(e.s.EnableTOTP(e.ctx, u.ID, 50, nil, at(2*time.Minute)), "EnableTOTP twice")
	e.conflict(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "THIRD"}), "PutTOTP over an enabled enrolment")
	if got, _ := e.s.TOTP(e.ctx, u.ID); got.Secret != "SECOND" || got.EnabledAt == nil {
		e.t.Fatalf("a refused PutTOTP changed the enrolment: %+v", got)
	}

	e.must(e.s.DeleteTOTP(e.ctx, u.ID), "DeleteTOTP")
	_, err = e.s.TOTP(e.ctx, u.ID)
	e.notFound(err, "TOTP after DeleteTOTP")
	// Re-enrolment starts afresh; the old recovery codes are gone.
	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "AGAIN", CreatedAt: at(0)}), "PutTOTP after DeleteTOTP")
	if got, _ := e.s.TOTP(e.ctx, u.ID); got.RecoveryRemaining != 0 || got.EnabledAt != nil {
		e.t.Fatalf("after re-enrolment %+v, want pending with no recovery codes", got)
	}
}

// testTOTPStepCAS: the last step only moves forward.
func testTOTPStepCAS(e *env) {
	uid := e.enabledTOTP("cas")
	other := e.enabledTOTP("cas-other")
	e.conflict(e.s.UseTOTPStep(e.ctx, uid, 100), "the step EnableTOTP used")
	e.conflict(e.s.UseTOTPStep(e.ctx, uid, 99), "an earlier step")
	e.must(e.s.UseTOTPStep(e.ctx, uid, 101), "a later step")
	e.conflict(e.s.UseTOTPStep(e.ctx, uid, 101), "the same step again")
	e.must(e.s.UseTOTPStep(e.ctx, uid, 103), "a step further on")
	e.conflict(e.s.UseTOTPStep(e.ctx, uid, 102), "a skipped step after a later one")
	if got, _ := e.s.TOTP(e.ctx, uid); got.LastStep != 103 {
		e.t.Fatalf("last step %d, want 103", got.LastStep)
	}
	// Another user's steps are their own.
	e.must(e.s.UseTOTPStep(e.ctx, other, 101), "another user's step 101")
}

// testTOTPStepRace: of concurrent uses of one step exactly one wins.
func testTOTPStepRace(e *env) {
	uid := e.enabledTOTP("step-race")
	errs := parallel(16, func(int) error { return e.s.UseTOTPStep(e.ctx, uid, 200) })
	e.oneWins(errs, core.ErrConflict, "use of one time step")
}

// testTOTPEnableRace: of concurrent confirmations exactly one enables, and
// its recovery codes are the ones kept.
func testTOTPEnableRace(e *env) {
	u := e.user("enable-race")
	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: u.ID, Secret: "S", CreatedAt: at(0)}), "PutTOTP")
	hashes := make([][]string, 8)
	for i := range hashes {
		hashes[i] = []string{e.hash(), e.hash(), e.hash()}
	}
	errs := parallel(len(hashes), func(i int) error { return e.s.EnableTOTP(e.ctx, u.ID, 300, hashes[i], at(time.Minute)) })
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			e.t.Fatalf("confirmations %d and %d both enabled the enrolment", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, core.ErrConflict):
			e.t.Errorf("a losing confirmation: %v, want a conflict", err)
		}
	}
	if winner < 0 {
		e.t.Fatal("no concurrent confirmation succeeded")
	}
	got, _ := e.s.TOTP(e.ctx, u.ID)
	if got.RecoveryRemaining != 3 {
		e.t.Fatalf("%d recovery codes after racing confirmations, want the winner's 3", got.RecoveryRemaining)
	}
	for i, hs := range hashes {
		err := e.s.UseRecoveryCode(e.ctx, u.ID, hs[0], at(time.Hour))
		if i == winner {
			e.must(err, "the winner's recovery code")
		} else {
			e.notFound(err, "a loser's recovery code")
		}
	}
}

func testTOTPRecoveryCodes(e *env) {
	h1, h2 := e.hash(), e.hash()
	uid := e.enabledTOTP("recovery", h1, h2)
	other := e.enabledTOTP("recovery-other", e.hash())
	e.notFound(e.s.UseRecoveryCode(e.ctx, other, h1, at(time.Hour)), "another user's recovery code")
	e.notFound(e.s.UseRecoveryCode(e.ctx, uid, e.hash(), at(time.Hour)), "an unknown recovery code")
	e.must(e.s.UseRecoveryCode(e.ctx, uid, h1, at(time.Hour)), "UseRecoveryCode")
	e.notFound(e.s.UseRecoveryCode(e.ctx, uid, h1, at(2*time.Hour)), "a used recovery code")
	if got, _ := e.s.TOTP(e.ctx, uid); got.RecoveryRemaining != 1 {
		e.t.Fatalf("%d recovery codes left, want 1", got.RecoveryRemaining)
	}
	if got, _ := e.s.TOTP(e.ctx, other); got.RecoveryRemaining != 1 {
		e.t.Fatalf("the other user has %d recovery codes left, want 1", got.RecoveryRemaining)
	}
	e.must(e.s.DeleteTOTP(e.ctx, uid), "DeleteTOTP")
	e.notFound(e.s.UseRecoveryCode(e.ctx, uid, h2, at(3*time.Hour)), "a recovery code after DeleteTOTP")
}

// testTOTPRecoveryRace: a recovery code is spent once under concurrency.
func testTOTPRecoveryRace(e *env) {
	h := e.hash()
	uid := e.enabledTOTP("recovery-race", h)
	errs := parallel(16, func(int) error { return e.s.UseRecoveryCode(e.ctx, uid, h, at(time.Hour)) })
	e.oneWins(errs, core.ErrNotFound, "use of one recovery code")
}

// testTOTPReplaceRecoveryCodes: a new set replaces every old code, used or
// not, and spends its step; a step not after the last one changes nothing.
func testTOTPReplaceRecoveryCodes(e *env) {
	used, unused := e.hash(), e.hash()
	uid := e.enabledTOTP("replace", used, unused)
	other := e.enabledTOTP("replace-other", e.hash())
	pending := e.user("replace-pending")
	e.must(e.s.PutTOTP(e.ctx, &twofactor.Secret{UserID: pending.ID, Secret: "P", CreatedAt: at(0)}), "PutTOTP")
	e.notFound(e.s.ReplaceRecoveryCodes(e.ctx, pending.ID, 101, []string{e.hash()}, at(time.Hour)), "ReplaceRecoveryCodes on a pending enrolment")
	e.notFound(e.s.ReplaceRecoveryCodes(e.ctx, e.user("replace-none").ID, 101, []string{e.hash()}, at(time.Hour)), "ReplaceRecoveryCodes without an enrolment")
	e.must(e.s.UseRecoveryCode(e.ctx, uid, used, at(time.Hour)), "UseRecoveryCode")

	kept := e.hash()
	e.conflict(e.s.ReplaceRecoveryCodes(e.ctx, uid, 100, []string{e.hash()}, at(time.Hour)), "ReplaceRecoveryCodes with the step EnableTOTP used")
	if got, _ := e.s.TOTP(e.ctx, uid); got.RecoveryRemaining != 1 {
		e.t.Fatalf("a refused replacement left %d recovery codes, want the 1 unused", got.RecoveryRemaining)
	}
	fresh := []string{kept, e.hash(), e.hash()}
	e.must(e.s.ReplaceRecoveryCodes(e.ctx, uid, 101, fresh, at(2*time.Hour)), "ReplaceRecoveryCodes")
	got, err := e.s.TOTP(e.ctx, uid)
	e.must(err, "TOTP")
	if got.RecoveryRemaining != 3 || got.LastStep != 101 || got.EnabledAt == nil {
		e.t.Fatalf("after replacement %+v, want 3 recovery codes, step 101, still enabled", got)
	}
	e.conflict(e.s.UseTOTPStep(e.ctx, uid, 101), "the step the replacement used")
	e.notFound(e.s.UseRecoveryCode(e.ctx, uid, unused, at(3*time.Hour)), "an old unused recovery code")
	e.notFound(e.s.UseRecoveryCode(e.ctx, uid, used, at(3*time.Hour)), "an old used recovery code")
	e.must(e.s.UseRecoveryCode(e.ctx, uid, kept, at(3*time.Hour)), "a new recovery code")
	if got, _ := e.s.TOTP(e.ctx, other); got.RecoveryRemaining != 1 || got.LastStep != 100 {
		e.t.Fatalf("another user's enrolment changed: %+v", got)
	}
}

// testTOTPReplaceRace: of concurrent replacements with one step exactly one
// wins, and its codes are the ones kept.
func testTOTPReplaceRace(e *env) {
	uid := e.enabledTOTP("replace-race", e.hash())
	sets := make([][]string, 8)
	for i := range sets {
		sets[i] = []string{e.hash(), e.hash()}
	}
	errs := parallel(len(sets), func(i int) error { return e.s.ReplaceRecoveryCodes(e.ctx, uid, 200, sets[i], at(time.Hour)) })
	e.oneWins(errs, core.ErrConflict, "replacement of the recovery codes with one step")
	for i, err := range errs {
		got := e.s.UseRecoveryCode(e.ctx, uid, sets[i][0], at(2*time.Hour))
		if err == nil {
			e.must(got, "the winner's recovery code")
		} else {
			e.notFound(got, "a loser's recovery code")
		}
	}
}
