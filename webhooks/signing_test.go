package webhooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/revopsdev/revops/webhooks"
)

func header(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// The reference library verifies our signatures, also while two secrets
// are in use during a rotation, and refuses a tampered body or a stranger's
// secret.
func TestStandardWebhooksLibraryVerifies(t *testing.T) {
	oldSecret, newSecret := webhooks.NewSecret(), webhooks.NewSecret()
	oldKey, err := webhooks.ParseSecret(oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := webhooks.ParseSecret(newSecret)
	body := []byte(`{"type":"post.created","data":{"id":1}}`)
	id, now := webhooks.NewEventID(), time.Now()

	verify := func(secret string, h http.Header, body []byte) error {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(body, h)
	}
	plain := header(webhooks.Headers([][]byte{oldKey}, id, now, body))
	if err := verify(oldSecret, plain, body); err != nil {
		t.Fatalf("library rejected our signature: %v", err)
	}
	rotating := header(webhooks.Headers([][]byte{newKey, oldKey}, id, now, body))
	if strings.Count(rotating.Get("webhook-signature"), "v1,") != 2 {
		t.Fatalf("rotation header: %q", rotating.Get("webhook-signature"))
	}
	for _, s := range []string{oldSecret, newSecret} {
		if err := verify(s, rotating, body); err != nil {
			t.Fatalf("during rotation, a receiver with one of the secrets failed: %v", err)
		}
	}
	if verify(webhooks.NewSecret(), rotating, body) == nil {
		t.Fatal("a stranger's secret verified")
	}
	if verify(oldSecret, plain, []byte(`{"type":"post.created","data":{"id":2}}`)) == nil {
		t.Fatal("a tampered body verified")
	}
	// Our Sign matches the library's own.
	wh, _ := standardwebhooks.NewWebhook(oldSecret)
	theirs, err := wh.Sign(id, now, body)
	if err != nil || theirs != webhooks.Sign(oldKey, id, now, body) {
		t.Fatalf("Sign differs from the reference: %q vs %q (%v)", webhooks.Sign(oldKey, id, now, body), theirs, err)
	}
}

func TestSecrets(t *testing.T) {
	s := webhooks.NewSecret()
	if k, err := webhooks.ParseSecret(s); err != nil || len(k) != 32 {
		t.Fatalf("NewSecret %q: %d bytes, %v", s, len(k), err)
	}
	for _, bad := range []string{"", "whsec_", "sk_abc", "whsec_!!!!", "whsec_" + strings.Repeat("A", 30), "whsec_" + strings.Repeat("A", 88)} {
		if _, err := webhooks.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}

func TestLegacySignatureAndEventIDs(t *testing.T) {
	key, body := []byte("k"), []byte("payload")
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if got, want := webhooks.LegacySignature(key, body), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("legacy %q, want %q", got, want)
	}
	a, b := webhooks.NewEventID(), webhooks.NewEventID()
	if a == b || !strings.HasPrefix(a, "evt_") || len(a) != 28 {
		t.Fatalf("event ids %q %q", a, b)
	}
}
