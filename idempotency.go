package revops

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/idempotency"
	"github.com/revopsdev/revops/internal/httpapi"
)

// maxReplayBody bounds a response kept for replay; a larger one is sent
// but not kept (its key is released, so a retry runs again).
const maxReplayBody = 4 << 20

// notReplayed are response headers that describe this response, not the
// result: a replay gets fresh ones.
var notReplayed = map[string]bool{
	"X-Request-Id": true, "X-Ratelimit-Limit": true, "X-Ratelimit-Remaining": true, "X-Ratelimit-Reset": true,
	"Ratelimit": true, "Ratelimit-Policy": true, "Retry-After": true, "Date": true, "Content-Length": true,
	"Idempotent-Replayed": true,
}

// idempotent is the last pipeline step: a POST, PUT, PATCH or DELETE with
// an Idempotency-Key runs once per key within the caller's scope, and its
// response is replayed to retries for IdempotencyTTL. The fingerprint is
// method, path with query, and body.
func (p *Platform) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header["Idempotency-Key"] // canonical key: Values would canonicalize it again
		c := httpapi.CallFrom(r.Context())
		if len(vals) == 0 || c.Principal == nil || !unsafeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if len(vals) > 1 || idempotency.ValidKey(vals[0]) != nil {
			p.api.WriteError(w, r, core.E(core.CodeBadRequest, "%s", idempotency.ErrInvalidKey.Error()))
			return
		}
		body, err := p.api.ReadBody(w, r)
		if err != nil {
			p.api.WriteError(w, r, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		now := p.cfg.Now().UTC()
		key := vals[0]
		rec := &idempotency.Record{
			Scope: idemScope(c), Key: idempotency.StoredKey(key), Fingerprint: idempotency.Fingerprint(key, r.Method, r.URL.RequestURI(), body),
			Claim: idempotency.NewClaim(), LockedUntil: now.Add(p.cfg.IdempotencyLockTimeout),
			CreatedAt: now, ExpiresAt: now.Add(p.cfg.IdempotencyTTL),
		}
		st := p.cfg.Store
		prev, err := st.ClaimIdempotencyKey(r.Context(), rec, now)
		switch {
		case err != nil:
			p.api.WriteError(w, r, err)
			return
		case prev != nil && prev.Fingerprint != rec.Fingerprint:
			e := core.Invalid("Idempotency-Key", "This key was already used with a different request (method, path or body). Use a new key for a new request.")
			e.Message = "The Idempotency-Key was already used with a different request."
			p.api.WriteError(w, r, e)
			return
		case prev != nil && prev.InFlight():
			w.Header().Set("Retry-After", "1")
			p.api.WriteError(w, r, core.Conflict("A request with this Idempotency-Key is still being processed. Retry it once that request has finished."))
			return
		case prev != nil:
			header, body, err := idempotency.Open(rec.Scope, key, prev.Status, prev.Body)
			if err != nil {
				p.api.WriteError(w, r, core.Internal(err))
				return
			}
			replay(w, prev.Status, header, body)
			return
		}
		// The claim is ours. The handler may run only until the claim would
		// go stale, so that a slow request cannot finish after a retry took
		// its key over.
		ctx, cancel := context.WithDeadline(r.Context(), rec.LockedUntil)
		defer cancel()
		rw := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil { // release the claim so that a retry runs again
				p.releaseIdem(r, rec)
				panic(v)
			}
		}()
		next.ServeHTTP(rw, r.WithContext(ctx))
		if rw.status == 0 { // wrote nothing: net/http sends an empty 200
			rw.WriteHeader(http.StatusOK)
		}
		// Not recorded, so a retry runs again: a server error; an error
		// answered because the request was cancelled or ran out of time
		// (its work was cut short); refused input, which did nothing (as
		// Stripe: a retry with a fixed Content-Type or body must run); a
		// response too big to keep.
		if rw.status >= 500 || (rw.status >= 400 && ctx.Err() != nil) || refusedInput(rw.status) || rw.overflow {
			p.releaseIdem(r, rec)
			return
		}
		bg := context.WithoutCancel(r.Context())
		sealed, err := idempotency.Seal(rec.Scope, key, rw.status, rw.header, rw.body.Bytes())
		if err != nil {
			p.releaseIdem(r, rec)
			p.cfg.Logger.ErrorContext(r.Context(), "revops: sealing an idempotent response; a retry will run it again", "error", err, "request_id", c.RequestID)
			return
		}
		ok, err := st.CompleteIdempotencyKey(bg, rec.Scope, rec.Key, rec.Claim, rw.status, nil, sealed)
		if err != nil { // once more: a lost record means the retry runs again
			ok, err = st.CompleteIdempotencyKey(bg, rec.Scope, rec.Key, rec.Claim, rw.status, nil, sealed)
		}
		if err != nil || !ok {
			p.cfg.Logger.ErrorContext(r.Context(), "revops: the response of an idempotent request was not recorded; a retry will run it again",
				"error", err, "claim_held", ok, "request_id", c.RequestID)
		}
	})
}

// refusedInput: the statuses that refuse a request's input (malformed,
// too large, not JSON, invalid), answered before anything was done.
func refusedInput(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

func (p *Platform) releaseIdem(r *http.Request, rec *idempotency.Record) {
	if err := p.cfg.Store.ReleaseIdempotencyKey(context.WithoutCancel(r.Context()), rec.Scope, rec.Key, rec.Claim); err != nil {
		// The claim goes stale at LockedUntil instead.
		p.cfg.Logger.ErrorContext(r.Context(), "revops: releasing an idempotency key", "error", err)
	}
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// idemScope is the caller's scope: the workspace, and the user of a
// personal key (any of their keys may retry) or the workspace key itself.
func idemScope(c *httpapi.Call) string {
	var b strings.Builder
	b.WriteString("w")
	b.WriteString(strconv.FormatInt(c.WorkspaceID(), 10))
	if c.Principal.UserBound() {
		b.WriteString(":u")
		b.WriteString(strconv.FormatInt(c.Principal.UserID, 10))
	} else {
		b.WriteString(":k")
		b.WriteString(strconv.FormatInt(c.Principal.KeyID, 10))
	}
	return b.String()
}

// replay writes a recorded response with Idempotent-Replayed: true; the
// rate-limit and request-id headers already set stay this response's own.
func replay(w http.ResponseWriter, status int, header map[string][]string, body []byte) {
	h := w.Header()
	for k, v := range header {
		if !notReplayed[http.CanonicalHeaderKey(k)] {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	h.Set("Idempotent-Replayed", "true")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// recorder passes a response through and keeps a copy for replay.
type recorder struct {
	http.ResponseWriter
	status   int
	header   map[string][]string
	body     bytes.Buffer
	overflow bool
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
		rw.header = map[string][]string{}
		for k, v := range rw.ResponseWriter.Header() {
			if !notReplayed[k] {
				rw.header[k] = append([]string(nil), v...)
			}
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.body.Len()+len(b) > maxReplayBody {
		rw.overflow = true
	} else if !rw.overflow {
		rw.body.Write(b)
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
