package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"regexp"
	"strings"
	"unsafe"
)

// A key is <prefix><body><checksum>: body is 256 random bits in base62
// (43 characters), checksum the CRC-32 of prefix+body in base62 (6
// characters). The checksum lets Parse reject typos and garbage without a
// database query; it is not a secret.
const (
	bodyLen     = 43
	checksumLen = 6
	// DefaultPrefix is used when the host configures none.
	DefaultPrefix = "revops_"
	displayLen    = 6
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var prefixRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,19}$`)

// ValidatePrefix checks a configured key prefix.
func ValidatePrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("keys: prefix %q must be 1–20 characters of letters, digits and '_', starting with a letter (e.g. %q)", p, DefaultPrefix)
	}
	return nil
}

// ErrMalformed is returned by Parse for anything that is not a well-formed key.
var ErrMalformed = errors.New("keys: malformed key")

func encode62(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// checksum is the CRC-32 of s in base62, checksumLen characters (62^6 > 2^32).
func checksum(s string) string {
	out := checksumOf(s)
	return string(out[:])
}

// checksumOf is checksum without allocating (the verify hot path).
func checksumOf(s string) [checksumLen]byte {
	c := uint64(crc32.Update(0, crc32.IEEETable, unsafe.Slice(unsafe.StringData(s), len(s))))
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return out
}

// isBase62 is a lookup table for the key alphabet.
var isBase62 = func() (t [256]bool) {
	for i := range len(base62) {
		t[base62[i]] = true
	}
	return t
}()

// Generate returns a new random key with prefix.
func Generate(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	s := prefix + encode62(b, bodyLen)
	return s + checksum(s)
}

// Parse checks a presented key's shape and checksum. It does no I/O.
func Parse(prefix, key string) error {
	if len(key) != len(prefix)+bodyLen+checksumLen || !strings.HasPrefix(key, prefix) {
		return ErrMalformed
	}
	for i := len(prefix); i < len(key); i++ {
		if !isBase62[key[i]] {
			return ErrMalformed
		}
	}
	cut := len(key) - checksumLen
	if sum := checksumOf(key[:cut]); string(sum[:]) != key[cut:] {
		return ErrMalformed
	}
	return nil
}

// Hash is the hex SHA-256 under which a key is stored and looked up.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// DisplayPrefix is the part of a key shown in listings.
func DisplayPrefix(prefix, key string) string {
	return key[:len(prefix)+displayLen]
}
