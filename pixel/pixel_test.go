package pixel_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/revopsdev/revops/pixel"
)

func TestClip(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"Mozilla/5.0", 512, "Mozilla/5.0"},
		{"a\x00b", 10, "ab"},
		{"bad\xffbyte", 20, "bad\uFFFDbyte"},
		{"héllo", 2, "h"}, // never half of é
		{strings.Repeat("é", 300), 512, strings.Repeat("é", 256)},
	} {
		got := pixel.Clip(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) || len(got) > c.n {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
