package webhookhttp

import (
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestDescribeHidesServerAddresses: the text lands in the tenant's
// delivery log, so it names what failed but not the server's resolver or
// its local socket.
func TestDescribeHidesServerAddresses(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 41234}
	for _, c := range []struct {
		err       error
		want, not string
	}{
		{&url.Error{Op: "Post", URL: "https://nope.example/", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "nope.example", Server: "10.255.255.53:53", IsNotFound: true}}},
			"the host nope.example could not be resolved (no such host)", "10.255.255.53"},
		{&url.Error{Op: "Post", URL: "https://down.example/", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "read udp 10.1.2.3:45582->10.255.255.53:53: read: connection refused", Name: "down.example", Server: "10.255.255.53:53"}}},
			"the host down.example could not be resolved (temporary DNS failure)", "10.1.2.3"},
		{&url.Error{Op: "Post", URL: "https://hooks.example/", Err: &net.OpError{Op: "read", Net: "tcp", Source: local,
			Addr: &net.TCPAddr{IP: net.IPv4(93, 184, 216, 34), Port: 443}, Err: os.NewSyscallError("read", syscall.ECONNRESET)}},
			"Connection failed: read: read: connection reset by peer", "10.1.2.3"},
		{&url.Error{Op: "Post", URL: "https://hooks.example/", Err: errors.New("tls: handshake failure")},
			"Connection failed: tls: handshake failure", "Post"},
	} {
		got := describe(c.err)
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("describe(%v) = %q, want it to contain %q and not %q", c.err, got, c.want, c.not)
		}
	}
}
