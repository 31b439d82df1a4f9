package keys_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"
	"github.com/revopsdev/revops/keys"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	is := is.New(t)
	seen := map[string]bool{}
	for range 200 {
		k := keys.Generate("revops_")
		is.NoErr(keys.Parse("revops_", k))
		is.True(!seen[k])
		seen[k] = true
		is.Equal(len(k), len("revops_")+43+6)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	good := keys.Generate("revops_")
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, s := range map[string]string{
		"empty":           "",
		"prefix only":     "revops_",
		"other prefix":    "sk_live" + good[6:],
		"truncated":       good[:len(good)-1],
		"extended":        good + "a",
		"typo in body":    flip(10),
		"typo in sum":     flip(len(good) - 1),
		"non-base62":      good[:10] + "-" + good[11:],
		"unicode":         good[:10] + "é" + good[12:],
		"whitespace":      " " + good[1:],
		"checksum of abc": "revops_" + strings.Repeat("a", 49),
	} {
		if err := keys.Parse("revops_", s); err == nil {
			t.Errorf("%s: Parse(%q) accepted garbage", name, s)
		}
	}
}

func TestHashIsStableHex(t *testing.T) {
	is := is.New(t)
	is.Equal(keys.Hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"revops_", "sk_live_", "k"} {
		if err := keys.ValidatePrefix(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "_x", "has space", "way_too_long_prefix_here", "é"} {
		if keys.ValidatePrefix(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestKeyStatus(t *testing.T) {
	is := is.New(t)
	now := mustTime("2026-01-15T10:00:00Z")
	past, future := now.Add(-1), now.Add(1)
	is.Equal((&keys.Key{}).Status(now), keys.StatusActive)
	is.Equal((&keys.Key{ExpiresAt: &past}).Status(now), keys.StatusExpired)
	is.Equal((&keys.Key{ExpiresAt: &now}).Status(now), keys.StatusExpired)
	is.Equal((&keys.Key{GraceEndsAt: &future}).Status(now), keys.StatusRotating)
	is.Equal((&keys.Key{GraceEndsAt: &past}).Status(now), keys.StatusExpired)
	is.Equal((&keys.Key{RevokedAt: &past, ExpiresAt: &future}).Status(now), keys.StatusRevoked)
}

func FuzzParse(f *testing.F) {
	f.Add(keys.Generate("revops_"))
	f.Add("revops_")
	f.Add("")
	f.Add("revops_" + strings.Repeat("z", 49))
	f.Fuzz(func(t *testing.T, s string) {
		if keys.Parse("revops_", s) != nil {
			return
		}
		// Anything accepted has the exact shape of a generated key.
		if len(s) != len("revops_")+49 || !strings.HasPrefix(s, "revops_") {
			t.Fatalf("accepted a key of the wrong shape: %q", s)
		}
		if keys.DisplayPrefix("revops_", s) != s[:13] {
			t.Fatal("display prefix")
		}
	})
}

func ExampleGenerate() {
	k := keys.Generate("revops_")
	fmt.Println(strings.HasPrefix(k, "revops_"), len(k), keys.Parse("revops_", k) == nil)
	// Output: true 56 true
}
