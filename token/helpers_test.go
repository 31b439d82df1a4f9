package token_test

import "encoding/base64"

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
