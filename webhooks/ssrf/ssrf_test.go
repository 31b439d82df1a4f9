package ssrf_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/revopsdev/revops/webhooks/ssrf"
)

func TestCheckAddressByAddress(t *testing.T) {
	refused := []string{
		"0.0.0.0", "0.1.2.3", // this network
		"127.0.0.1", "127.255.255.254", "::1", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"169.254.169.254", "169.254.0.1", // link-local, cloud metadata
		"100.64.0.1", "100.127.255.255", // CGNAT
		"198.18.0.1", "198.19.255.255", // benchmarking
		"240.0.0.1", "255.255.255.255", // reserved, broadcast
		"224.0.0.1", "192.0.0.8", // multicast, IETF assignments
		"::ffff:127.0.0.1", "::ffff:8.8.8.8", // IPv4-mapped IPv6, even of a public address
		"64:ff9b::7f00:1", "64:ff9b:1::1", // NAT64
		"2002:7f00:1::1",                                      // 6to4
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",                // Teredo
		"fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::", // ULA, link-local, multicast, unspecified
		"fe80::1%eth0",             // zoned
		"::127.0.0.1", "::8.8.8.8", // IPv4-compatible IPv6 (deprecated)
	}
	allowed := []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "198.20.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"}
	for _, s := range refused {
		err := ssrf.Check(netip.MustParseAddr(s))
		var be *ssrf.BlockedError
		if !errors.As(err, &be) || be.Reason == "" {
			t.Errorf("%s: %v, want refused with a reason", s, err)
		}
	}
	for _, s := range allowed {
		if err := ssrf.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
	if ssrf.Check(netip.Addr{}) == nil {
		t.Error("the zero address was allowed")
	}
}

type fakeResolver struct {
	answers [][]netip.Addr // one per call, the last repeated
	calls   atomic.Int32
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	i := int(f.calls.Add(1)) - 1
	if i >= len(f.answers) {
		i = len(f.answers) - 1
	}
	return f.answers[i], nil
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	pub := &fakeResolver{answers: [][]netip.Addr{addrs("93.184.216.34")}}
	for _, c := range []struct {
		url   string
		dev   bool
		ok    bool
		about string
	}{
		{"https://hooks.example.com/in", false, true, "public name"},
		{"http://hooks.example.com/in", false, false, "http in production"},
		{"http://127.0.0.1:8080/in", true, true, "http to loopback when private targets are allowed"},
		{"https://127.0.0.1/in", false, false, "literal loopback"},
		{"https://[::1]/in", false, false, "literal IPv6 loopback"},
		{"https://169.254.169.254/latest/meta-data", false, false, "metadata"},
		{"https://localhost/in", false, false, "localhost"},
		{"https://api.localhost/in", false, false, "*.localhost"},
		{"https://user:pw@hooks.example.com/in", false, false, "credentials"},
		{"ftp://hooks.example.com/in", false, false, "scheme"},
		{"/relative", false, false, "relative"},
		{"https://", false, false, "no host"},
		{"https://hooks.example.com:443/in", false, true, "explicit port"},
		{"https://hooks.example.com:65535/in", false, true, "highest port"},
		{"https://hooks.example.com:0/in", false, false, "port 0"},
		{"https://hooks.example.com:99999/in", false, false, "port out of range"},
		{"http://127.0.0.1:70000/in", true, false, "port out of range, private targets allowed"},
	} {
		err := ssrf.CheckURL(ctx, pub, c.url, c.dev)
		if (err == nil) != c.ok {
			t.Errorf("%s (%s): %v, want ok=%v", c.url, c.about, err, c.ok)
		}
	}
	private := &fakeResolver{answers: [][]netip.Addr{addrs("93.184.216.34", "10.0.0.5")}}
	if err := ssrf.CheckURL(ctx, private, "https://mixed.example.com/", false); err == nil {
		t.Error("a name with one private address was accepted")
	}
}

// TestRebindingIsRefusedAtDialTime: the name resolves to a public address
// when the endpoint is saved and to loopback when it is called; the dial
// is refused, and the receiver never sees a request.
func TestRebindingIsRefusedAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	r := &fakeResolver{answers: [][]netip.Addr{addrs("93.184.216.34"), addrs("127.0.0.1")}}
	target := "http://rebind.example.com:" + port + "/in"
	if err := ssrf.CheckURL(context.Background(), r, strings.Replace(target, "http:", "https:", 1), false); err != nil {
		t.Fatalf("save-time check of the public answer: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: ssrf.DialContext(r, false)}}
	_, err := client.Get(target)
	var be *ssrf.BlockedError
	if !errors.As(err, &be) || be.IP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("dial after rebinding to loopback: %v, want refused", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the request reached the loopback receiver")
	}
	// With private targets allowed (development), the same dial goes through.
	dev := &http.Client{Transport: &http.Transport{DialContext: ssrf.DialContext(r, true)}}
	res, err := dev.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("hits %d, want 1", hits.Load())
	}
}
