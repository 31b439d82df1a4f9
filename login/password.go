package login

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters (RFC 9106's second recommended option, memory-constrained:
// t=3, m=64 MiB, p=4; 16-byte salt, 32-byte tag). They are written into every
// hash, so raising them later leaves old hashes verifiable.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Password length bounds: at least 8 characters (NIST SP 800-63B), at most
// 256 bytes so that hashing cannot be turned into a denial of service.
const (
	MinPassword = 8
	MaxPassword = 256
)

// CheckPassword reports whether pw is acceptable as a new password.
func CheckPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPassword || len(pw) > MaxPassword || !utf8.ValidString(pw) {
		return fmt.Errorf("a password is %d to %d bytes of valid text, at least %d characters", MinPassword, MaxPassword, MinPassword)
	}
	return nil
}

// HashPassword returns pw's argon2id hash in the PHC string format:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (unpadded base64).
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("login: malformed argon2id hash")

// VerifyPassword reports whether pw matches encoded, comparing in constant
// time. A malformed hash never matches.
func VerifyPassword(pw, encoded string) bool {
	ok, err := verify(pw, encoded)
	return err == nil && ok
}

func verify(pw, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<21 || t == 0 || t > 16 || p == 0 {
		return false, errBadHash // bounds: a stored hash must not make verification unbounded
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when an account does not exist, so that a
// failed login takes the same time whether or not the email is known.
var dummyHash, _ = HashPassword("revops: no such account")
