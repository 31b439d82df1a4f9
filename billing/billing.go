// Package billing holds what a SaaS sells and counts: plans of features per
// tier (entitlements), exact usage metering, billing accounts with a credit
// ledger, and the payment Provider interface (Stripe, or disabled).
//
// Money is integer minor units with a currency code; there is no float money.
package billing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind says how a feature is limited.
type Kind string

const (
	// Metered features are consumed and reset every Period (api_calls).
	Metered Kind = "metered"
	// Level features are an amount in use that goes up and down and never
	// resets (posts, storage): usage events may be negative.
	Level Kind = "level"
	// Flag features are on (limit 1) or off (limit 0).
	Flag Kind = "flag"
)

// Period is how often a metered feature's usage resets, at midnight of the
// workspace's timezone.
type Period string

const (
	Daily   Period = "day"
	Monthly Period = "month"
	Yearly  Period = "year"
)

// Unlimited is the limit of a feature a plan does not cap.
const Unlimited int64 = -1

// Feature is something plans grant.
type Feature struct {
	Key    string // e.g. "api_calls"
	Kind   Kind
	Period Period // Metered only; default Monthly
	// Unit is shown beside the numbers ("bytes"); empty for counts.
	Unit string
	// Label names one unit in messages: "Post" gives "Post limit exceeded.
	// Used: 100, Limit: 100". Default: the key, capitalised.
	Label string
}

// Plan is a tier's limit for each feature; a feature missing from Limits is
// not granted (limit 0). Flags use 1 for on.
type Plan struct {
	Limits map[string]int64
}

// Config declares the features and each tier's plan.
type Config struct {
	// Features default to DefaultFeatures when Plans is nil too.
	Features []Feature
	// Plans by tier name; every tier of the platform needs one.
	Plans map[string]Plan
	// UpgradeURL is returned when a limit is reached.
	UpgradeURL string
	// Provider takes payments; nil disables billing (see Provider).
	Provider Provider
}

const gib = 1 << 30

// DefaultFeatures match spec 001's examples.
func DefaultFeatures() []Feature {
	return []Feature{
		{Key: "posts", Kind: Level, Label: "Post"},
		{Key: "api_calls", Kind: Metered, Period: Monthly, Label: "API call"},
		{Key: "storage", Kind: Level, Unit: "bytes", Label: "Storage"},
		{Key: "custom_domains", Kind: Flag, Label: "Custom domains"},
	}
}

// DefaultPlans are the plans of the default tiers (free … enterprise).
func DefaultPlans() map[string]Plan {
	return map[string]Plan{
		"free":       {Limits: map[string]int64{"posts": 100, "api_calls": 1_000, "storage": 1 * gib, "custom_domains": 0}},
		"starter":    {Limits: map[string]int64{"posts": 500, "api_calls": 5_000, "storage": 2 * gib, "custom_domains": 0}},
		"pro":        {Limits: map[string]int64{"posts": 1_000, "api_calls": 10_000, "storage": 5 * gib, "custom_domains": 1}},
		"agency":     {Limits: map[string]int64{"posts": 10_000, "api_calls": 100_000, "storage": 50 * gib, "custom_domains": 1}},
		"enterprise": {Limits: map[string]int64{"posts": Unlimited, "api_calls": Unlimited, "storage": Unlimited, "custom_domains": 1}},
	}
}

// Validate fills defaults and checks the config against the platform's
// tiers, saying how to fix what is wrong.
func (c *Config) Validate(tiers []string) error {
	if c.Features == nil && c.Plans == nil {
		c.Features, c.Plans = DefaultFeatures(), DefaultPlans()
	}
	var errs []error
	seen := map[string]bool{}
	for i := range c.Features {
		f := &c.Features[i]
		if !validKey(f.Key) || seen[f.Key] {
			errs = append(errs, fmt.Errorf("Features[%d]: key %q must be unique, 1–64 of a-z, 0-9 and _", i, f.Key))
		}
		seen[f.Key] = true
		switch f.Kind {
		case Metered:
			if f.Period == "" {
				f.Period = Monthly
			}
			if !slices.Contains([]Period{Daily, Monthly, Yearly}, f.Period) {
				errs = append(errs, fmt.Errorf("Features[%d] (%s): Period %q: use billing.Daily, Monthly or Yearly", i, f.Key, f.Period))
			}
		case Level, Flag:
			if f.Period != "" {
				errs = append(errs, fmt.Errorf("Features[%d] (%s): only Metered features have a Period", i, f.Key))
			}
		default:
			errs = append(errs, fmt.Errorf("Features[%d] (%s): Kind %q: use billing.Metered, Level or Flag", i, f.Key, f.Kind))
		}
		if f.Label == "" && f.Key != "" {
			f.Label = strings.ToUpper(f.Key[:1]) + strings.ReplaceAll(f.Key[1:], "_", " ")
		}
	}
	for _, t := range tiers {
		if _, ok := c.Plans[t]; !ok {
			errs = append(errs, fmt.Errorf("Plans has no plan for tier %q: give every tier one", t))
		}
	}
	for t, p := range c.Plans {
		if !slices.Contains(tiers, t) {
			errs = append(errs, fmt.Errorf("Plans[%q]: no such tier (tiers: %s)", t, strings.Join(tiers, ", ")))
		}
		for k, v := range p.Limits {
			f, ok := c.Feature(k)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("Plans[%q]: unknown feature %q: declare it in Features", t, k))
			case v < Unlimited:
				errs = append(errs, fmt.Errorf("Plans[%q].Limits[%q] = %d: use a limit ≥ 0 or billing.Unlimited", t, k, v))
			case f.Kind == Flag && v != 0 && v != 1:
				errs = append(errs, fmt.Errorf("Plans[%q].Limits[%q] = %d: a flag is 1 (on) or 0 (off)", t, k, v))
			}
		}
	}
	return errors.Join(errs...)
}

// Feature returns the declared feature key.
func (c *Config) Feature(key string) (Feature, bool) {
	for _, f := range c.Features {
		if f.Key == key {
			return f, true
		}
	}
	return Feature{}, false
}

func validKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, r := range k {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
