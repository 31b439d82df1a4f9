// Package pixel is website tracking for a workspace: a public site key that
// goes into web pages, a configuration the script reads, and events it
// sends. Everything arriving here is untrusted and unauthenticated, so
// every field is bounded and checked.
package pixel

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/revopsdev/revops/core"
)

// Site is a workspace's pixel configuration.
type Site struct {
	WorkspaceID int64
	SiteKey     string // public: "pk_" and 24 base62 characters
	Enabled     bool
	Pageviews   bool
	Events      bool
	Sessions    bool
	SampleRate  float64 // 0..1: the share of visitors tracked
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// DefaultSite is the configuration of a workspace that set none.
func DefaultSite(workspaceID int64) Site {
	return Site{WorkspaceID: workspaceID, Enabled: true, Pageviews: true, Events: true, Sessions: true, SampleRate: 1}
}

// Event is one tracked event.
type Event struct {
	ID          int64
	WorkspaceID int64
	Event       string
	URL         string
	Referrer    string
	UserAgent   string
	Properties  map[string]any
	CreatedAt   time.Time
}

// Store persists sites and events. Contract, checked by storetest:
//   - PixelSite and PixelSiteByKey are not found when none is stored;
//   - PutPixelSite inserts the workspace's site, or replaces the settings
//     of an existing one, keeping its SiteKey and CreatedAt (so concurrent
//     first writes agree on one key); a new site key in use by another
//     workspace is a conflict; a missing workspace is not found;
//   - ListPixelEvents lists a workspace's events, newest first by default
//     (sorts: id, created_at, event), search matching event or url.
type Store interface {
	PixelSite(ctx context.Context, workspaceID int64) (*Site, error)
	PixelSiteByKey(ctx context.Context, siteKey string) (*Site, error)
	PutPixelSite(ctx context.Context, s *Site) error
	CreatePixelEvent(ctx context.Context, e *Event) error
	ListPixelEvents(ctx context.Context, workspaceID int64, p core.ListParams) ([]Event, int, error)
}

// Limits on what a tracked event may carry.
const (
	MaxEventName  = 64
	MaxURL        = 2048
	MaxUserAgent  = 512
	MaxProperties = 25
	MaxPropKey    = 64
	MaxPropValue  = 500
)

var eventNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)

// TrackInput is an event as a page sends it.
type TrackInput struct {
	Event      string
	URL        string
	Referrer   string
	UserAgent  string
	Properties map[string]any
}

// Check validates in: every failure is a validation error on its field.
func (in *TrackInput) Check() error {
	var v core.Validation
	switch {
	case in.Event == "":
		v.Add("event", "The event field is required.")
	case len(in.Event) > MaxEventName || !eventNameRE.MatchString(in.Event):
		v.Add("event", fmt.Sprintf("The event must be at most %d letters, digits, '_', '.', ':' or '-', starting with a letter or digit.", MaxEventName))
	}
	checkURL(&v, "url", in.URL)
	checkURL(&v, "referrer", in.Referrer)
	if utf8.RuneCountInString(in.UserAgent) > MaxUserAgent {
		v.Add("user_agent", fmt.Sprintf("The user agent may not be longer than %d characters.", MaxUserAgent))
	}
	if len(in.Properties) > MaxProperties {
		v.Add("properties", fmt.Sprintf("At most %d properties are allowed.", MaxProperties))
	}
	for k, val := range in.Properties {
		if n := utf8.RuneCountInString(k); n == 0 || n > MaxPropKey || strings.ContainsFunc(k, unicode.IsControl) {
			v.Add("properties", fmt.Sprintf("Property names must be 1 to %d characters, none of them control characters.", MaxPropKey))
			break
		}
		field := "properties." + k // each property's error under its own name
		switch x := val.(type) {
		case nil, bool, float64, json.Number:
		case string:
			if utf8.RuneCountInString(x) > MaxPropValue {
				v.Add(field, fmt.Sprintf("Property %q is longer than %d characters.", k, MaxPropValue))
			}
		default:
			v.Add(field, fmt.Sprintf("Property %q must be a string, number, boolean or null.", k))
		}
	}
	return v.Err()
}

func checkURL(v *core.Validation, field, s string) {
	if s == "" {
		return
	}
	if utf8.RuneCountInString(s) > MaxURL {
		v.Add(field, fmt.Sprintf("The %s may not be longer than %d characters.", field, MaxURL))
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Add(field, fmt.Sprintf("The %s must be an absolute http or https URL.", field))
	}
}

// Clip makes s valid UTF-8 without NULs and cuts it to at most n bytes on
// a character boundary (for header values, which are not validated).
func Clip(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Wants reports whether site records an event of this name now.
func (s *Site) Wants(event string) bool {
	if !s.Enabled {
		return false
	}
	switch event {
	case "pageview":
		return s.Pageviews
	case "session_start", "session_end":
		return s.Sessions
	}
	return s.Events
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSiteKey returns a fresh public site key.
func NewSiteKey() string {
	b := []byte("pk_")
	for range 24 {
		n, err := rand.Int(rand.Reader, big.NewInt(62))
		if err != nil {
			panic(err)
		}
		b = append(b, base62[n.Int64()])
	}
	return string(b)
}

var siteKeyRE = regexp.MustCompile(`^pk_[0-9A-Za-z]{24}$`)

// ValidSiteKey reports whether s has the form of a site key.
func ValidSiteKey(s string) bool { return siteKeyRE.MatchString(s) }
