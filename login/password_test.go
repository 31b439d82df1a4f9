package login

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("hash %q is not a PHC argon2id string with the documented parameters", h)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !VerifyPassword("correct horse", h) || VerifyPassword("correct horsE", h) || VerifyPassword("", h) {
		t.Fatal("verification is wrong")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=65536,t=3,p=4$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999,t=3,p=4$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Replace(h, "$v=19$", "$v=16$", 1)} {
		if VerifyPassword("correct horse", bad) {
			t.Errorf("a malformed or out-of-bounds hash verified: %q", bad)
		}
	}
	if CheckPassword("short") == nil || CheckPassword(strings.Repeat("x", 300)) == nil || CheckPassword("long enough") != nil {
		t.Fatal("CheckPassword bounds")
	}
}
