// Package webhooks is outgoing webhooks: endpoints and their secrets, the
// event catalog, Standard Webhooks signatures (this file), publishing, and
// delivery with retries through a Queue and a Sender. The delivery row is
// the durable truth; jobs only name it.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// Secret sizes: a secret is 24 to 64 random bytes; NewSecret makes 32.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// NewSecret returns a fresh secret: "whsec_" and the standard base64 of 32
// random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ErrSecret is returned for a malformed secret.
var ErrSecret = errors.New(`The secret must be "whsec_" followed by the base64 of 24 to 64 bytes.`)

// ParseSecret returns the key bytes of a secret.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, ErrSecret
	}
	return key, nil
}

// Sign is the Standard Webhooks v1 signature of one delivery:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix timestamp + "." + body)).
func Sign(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, at.Unix(), 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Headers are the Standard Webhooks headers of a delivery signed with every
// key given: during a secret rotation both the new and the old one, their
// signatures space-separated, so receivers holding either verify it.
func Headers(keys [][]byte, id string, at time.Time, body []byte) map[string]string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Sign(k, id, at, body)
	}
	return map[string]string{
		HeaderID:        id,
		HeaderTimestamp: strconv.FormatInt(at.Unix(), 10),
		HeaderSignature: strings.Join(sigs, " "),
	}
}

// LegacySignature is the optional spec 000/001-style signature of a body:
// "sha256=" + hex(HMAC-SHA256(key, body)).
func LegacySignature(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// NewEventID returns an event id: "evt_" and 24 random base32 characters.
// It is fixed when the event is published, so that every retry of its
// deliveries carries the same webhook-id.
func NewEventID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return "evt_" + strings.ToLower(base32NoPad.EncodeToString(b))
}

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)
