// Package ssrf keeps outgoing webhook requests away from the host's own
// network: loopback, private ranges, link-local and cloud metadata, and the
// IPv6 forms that embed or translate to IPv4. The check that counts runs on
// the address actually dialled (Dialer.Control), so a name that resolves to
// a public address when the endpoint is saved and to a private one when it
// is called (DNS rebinding) is still refused.
package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// blocked lists every refused range with the reason given for it.
var blocked = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network (0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local / cloud metadata (169.254.0.0/16)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking network (198.18.0.0/15)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 (::/96, deprecated)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped IPv6"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 (local use)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (fc00::/7)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Check returns an error naming why ip may not be called, or nil.
func Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return errors.New("ssrf: not an IP address")
	}
	ip = ip.WithZone("")
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return &BlockedError{IP: ip, Reason: b.reason}
		}
	}
	return nil
}

// BlockedError is a refused address.
type BlockedError struct {
	IP     netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("ssrf: %s is not a public address: %s", e.IP, e.Reason)
}

// Control is a net.Dialer Control function refusing blocked addresses: it
// sees the address about to be connected to, after name resolution.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("ssrf: cannot check dial address %q: %w", address, err)
	}
	return Check(ap.Addr())
}

// Resolver is the part of *net.Resolver that CheckURL uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL validates an endpoint URL when it is saved: https (or http when
// allowPrivate), a host, and, unless allowPrivate, no literal or resolved
// address that is blocked. Delivery checks again at dial time.
func CheckURL(ctx context.Context, r Resolver, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errors.New("The url must be an absolute URL with a host.")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return errors.New("The url must use https.")
	}
	if u.User != nil {
		return errors.New("The url must not contain credentials.")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("The url's port must be a number from 1 to 65535.")
		}
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := Check(ip); err != nil {
			return errors.New("The url must point to a public address.")
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return errors.New("The url must point to a public address.")
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("The url's host %q could not be resolved.", host)
	}
	for _, ip := range addrs {
		if Check(ip) != nil {
			return errors.New("The url must point to a public address.")
		}
	}
	return nil
}

// Dialer returns a dialer that refuses blocked addresses (unless
// allowPrivate, for development and tests).
func Dialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{}
	if !allowPrivate {
		d.Control = Control
	}
	return d
}

// DialContext returns a DialContext for http.Transport that resolves names
// with r (nil: net.DefaultResolver) and dials the addresses one by one
// through a dialer that checks each of them, so that the address checked
// is the address connected to.
func DialContext(r Resolver, allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	d := Dialer(allowPrivate)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("ssrf: %s resolved to no address", host)
		}
		return nil, errors.Join(errs...)
	}
}
