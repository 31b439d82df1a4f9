package workspace_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/revopsdev/revops/workspace"
)

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Acme Corporation":        "acme-corporation",
		"  Acme -- Corp!!  ":      "acme-corp",
		"Café Zürich":             "cafe-zurich",
		"日本語":                     "workspace",
		"":                        "workspace",
		"R&D 2026":                "r-d-2026",
		strings.Repeat("ab ", 50): strings.TrimRight(strings.Repeat("ab-", 22)[:64], "-"),
	} {
		if got := workspace.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
		if got := workspace.Slugify(in); len(got) > workspace.MaxSlugLen {
			t.Errorf("Slugify(%q) is %d long", in, len(got))
		}
	}
}

func TestSniffImage(t *testing.T) {
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"png":          {[]byte("\x89PNG\r\n\x1a\n...."), "image/png"},
		"jpeg":         {[]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0}, "image/jpeg"},
		"gif87":        {[]byte("GIF87a..."), "image/gif"},
		"webp":         {[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"},
		"riff but wav": {[]byte("RIFF\x00\x00\x00\x00WAVEfmt "), ""},
		"svg":          {[]byte("<svg/>"), ""},
		"empty":        {nil, ""},
		"short":        {[]byte{0x89, 'P'}, ""},
	} {
		if got := workspace.SniffImage(c.b); got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

func ExampleSlugify() {
	fmt.Println(workspace.Slugify("Acme Café & Co."))
	// Output: acme-cafe-co
}
