package idempotency_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/revopsdev/revops/idempotency"
)

// TestSealOpen: a sealed response opens with its key and scope only, and
// the sealed bytes, the stored key and the fingerprint show nothing of it.
func TestSealOpen(t *testing.T) {
	is := is.New(t)
	const key, scope = "4f9c2d0e-6a51-4b8e-9f0a-7d3c2b1a0e9f", "w1:k2"
	header := map[string][]string{"Content-Type": {"application/json"}, "Set-Cookie": {"revops_session=s3cr3t"}}
	body := []byte(`{"data":{"key":"revops_live_very_secret"}}`)
	sealed, err := idempotency.Seal(scope, key, 201, header, body)
	is.NoErr(err)
	is.True(!bytes.Contains(sealed, []byte("very_secret")) && !bytes.Contains(sealed, []byte("s3cr3t")))

	h, b, err := idempotency.Open(scope, key, 201, sealed)
	is.NoErr(err)
	is.Equal(h, header)
	is.Equal(b, body)
	_, b, err = idempotency.Open(scope, key, 204, mustSeal(t, scope, key, 204, nil, nil))
	is.NoErr(err)
	is.Equal(len(b), 0)

	for name, try := range map[string]func() error{
		"another key":    func() error { _, _, err := idempotency.Open(scope, key+"x", 201, sealed); return err },
		"another scope":  func() error { _, _, err := idempotency.Open("w1:k3", key, 201, sealed); return err },
		"another status": func() error { _, _, err := idempotency.Open(scope, key, 200, sealed); return err },
		"tampered": func() error {
			bad := bytes.Clone(sealed)
			bad[len(bad)-1] ^= 1
			_, _, err := idempotency.Open(scope, key, 201, bad)
			return err
		},
		"truncated": func() error { _, _, err := idempotency.Open(scope, key, 201, sealed[:5]); return err },
	} {
		if err := try(); err != idempotency.ErrSealed {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}

	// A one-character key is valid: it seals too (HMAC and HKDF get a digest
	// of it, as long as FIPS 140-only mode demands).
	short, err := idempotency.Seal(scope, "k", 200, nil, body)
	is.NoErr(err)
	_, b, err = idempotency.Open(scope, "k", 200, short)
	is.NoErr(err)
	is.Equal(b, body)

	stored := idempotency.StoredKey(key)
	is.True(len(stored) == 64 && !strings.Contains(stored, key[:8]))
	is.True(stored != idempotency.StoredKey(key+"x"))
	fp := idempotency.Fingerprint(key, "POST", "/login", []byte(`{"password":"hunter2"}`))
	is.True(fp != idempotency.Fingerprint("other", "POST", "/login", []byte(`{"password":"hunter2"}`))) // keyed
	is.True(fp != idempotency.Fingerprint(key, "POST", "/login", []byte(`{"password":"hunter3"}`)))
}

func mustSeal(t *testing.T, scope, key string, status int, h map[string][]string, b []byte) []byte {
	t.Helper()
	s, err := idempotency.Seal(scope, key, status, h, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
