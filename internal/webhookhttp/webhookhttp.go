// Package webhookhttp is the HTTP client that delivers webhooks: it dials
// only addresses the SSRF guard allows (checked at dial time, so DNS
// rebinding cannot reach a private address), follows no redirect and keeps
// a bounded part of each answer. webhooks.Service uses it through the
// webhooks.Sender interface; domain packages stay free of net/http.
package webhookhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/revopsdev/revops/webhooks"
	"github.com/revopsdev/revops/webhooks/ssrf"
)

// Config configures a Client.
type Config struct {
	// AllowPrivate lets it dial private, loopback and link-local addresses
	// (development and tests only).
	AllowPrivate bool
	// Resolver resolves hosts (default net.DefaultResolver).
	Resolver ssrf.Resolver
	// PerHost bounds idle connections kept per endpoint host (default 4).
	PerHost int
	// Transport replaces the guarded transport (tests of the client only).
	Transport http.RoundTripper
	// Now is the clock an HTTP-date Retry-After is measured from.
	Now func() time.Time
}

const (
	drainLimit    = 64 << 10 // bytes read after the kept part, to reuse the connection
	maxRetryAfter = 24 * time.Hour
)

// Client sends deliveries.
type Client struct {
	hc  *http.Client
	now func() time.Time
}

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.PerHost <= 0 {
		cfg.PerHost = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			Proxy:               nil, // a proxy would dial for us, unchecked
			DialContext:         ssrf.DialContext(cfg.Resolver, cfg.AllowPrivate),
			MaxIdleConnsPerHost: cfg.PerHost,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}
	}
	return &Client{now: cfg.Now, hc: &http.Client{Transport: cfg.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var _ webhooks.Sender = (*Client)(nil)

// Send POSTs body to rawURL with header; ctx bounds the whole attempt.
func (c *Client) Send(ctx context.Context, rawURL string, header map[string]string, body []byte) webhooks.SendResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return webhooks.SendResult{Err: "The endpoint URL is invalid."}
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	ms := int(time.Since(start).Milliseconds())
	if err != nil {
		return webhooks.SendResult{TimeMs: ms, Err: describe(err)}
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, webhooks.MaxResponseBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	r := webhooks.SendResult{Code: resp.StatusCode, Body: string(bytes.ToValidUTF8(buf, nil)), TimeMs: ms}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		r.Err = "Redirects are not followed; point the endpoint at the final URL."
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	return r
}

// RetryAfter parses a Retry-After header, seconds or an HTTP date, capped at
// 24 h; 0 if absent or unusable.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// describe turns a client error into what a customer reading the delivery
// log needs.
func describe(err error) string {
	var blocked *ssrf.BlockedError
	var ne net.Error
	switch {
	case errors.As(err, &blocked):
		return "The endpoint resolved to an address that is not allowed (" + blocked.Error() + ")."
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "Timed out before the endpoint answered."
	}
	// The tenant reads this in its delivery log: say what failed without
	// the server's own addresses (its resolver, its local socket).
	var dns *net.DNSError
	if errors.As(err, &dns) { // its Err may quote the resolver's socket: fixed words only
		why := "temporary DNS failure"
		if dns.IsNotFound {
			why = "no such host"
		}
		return fmt.Sprintf("Connection failed: the host %s could not be resolved (%s).", dns.Name, why)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Sprintf("Connection failed: %s: %v", op.Op, op.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Sprintf("Connection failed: %v", err)
}
