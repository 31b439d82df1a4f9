package twofactor

import (
	"encoding/base32"
	"strings"
	"testing"
)

// RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" gives
// 94287082 at T=59 s and 07081804 at T=1111111109 s (8 digits; ours are the
// last 6).
func TestCodeAtRFC6238Vectors(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for _, c := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		got, err := CodeAt(secret, c.unix/Period)
		if err != nil || got != c.want {
			t.Errorf("T=%d: %q %v, want %q", c.unix, got, err, c.want)
		}
	}
}

func TestSealOpen(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	s, err := New(Config{Store: nil, Now: nil})
	if err == nil || s != nil {
		t.Fatal("New without store and clock must fail")
	}
	sealer := &Service{}
	if sealer, err = newSealer(key); err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.seal(7, "JBSWY3DPEHPK3PXP")
	if err != nil || !strings.HasPrefix(sealed, sealedPrefix) || strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatalf("sealed %q %v", sealed, err)
	}
	if got, err := sealer.open(7, sealed); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := sealer.open(8, sealed); err == nil {
		t.Fatal("a secret sealed for user 7 opened as user 8's")
	}
	other, _ := newSealer([]byte(strings.Repeat("x", 32)))
	if _, err := other.open(7, sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if _, err := (&Service{}).open(7, sealed); err == nil {
		t.Fatal("a sealed secret opened without a key")
	}
	if got, _ := (&Service{}).open(7, "JBSWY3DPEHPK3PXP"); got != "JBSWY3DPEHPK3PXP" {
		t.Fatal("a plain secret must read as itself")
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestCodeShapes(t *testing.T) {
	for in, want := range map[string]string{"123 456": "123456", "ABCDE-FGHIJ": "abcdefghij", " abcde fghij ": "abcdefghij"} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
	for _, ok := range []string{"123456", "000000"} {
		if !isTOTPCode(ok) {
			t.Errorf("%q is a TOTP code", ok)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", "+12345", "-12345"} {
		if isTOTPCode(bad) {
			t.Errorf("%q is not a TOTP code", bad)
		}
	}
	seen := map[string]bool{}
	for range 100 {
		c := newRecoveryCode()
		if len(c) != 11 || c[5] != '-' || !isRecoveryCode(normalize(c)) || seen[c] {
			t.Fatalf("recovery code %q", c)
		}
		seen[c] = true
		if HashRecoveryCode(c) != HashRecoveryCode(strings.ToUpper(strings.ReplaceAll(c, "-", " "))) {
			t.Fatalf("the hash of %q depends on its spelling", c)
		}
	}
	for _, bad := range []string{"abcdefghi1", "abcdefghi", "abcdefghijk", "ABCDEFGHIJ"} {
		if isRecoveryCode(bad) {
			t.Errorf("%q is not a recovery code", bad)
		}
	}
}
