package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/revopsdev/revops/core"
)

// ReadBody reads the request body up to its route's limit (bodyLimit): a
// larger one is payload_too_large, an unreadable one bad_request.
func (a *API) ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := a.bodyLimit(CallFrom(r.Context()))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, core.E(core.CodeBadRequest, "The request body could not be read.")
	}
	return body, nil
}

// tooLarge is the 413 of a body over limit bytes.
func tooLarge(limit int64) error {
	return core.E(core.CodeTooLarge, "The request body may not be larger than %d bytes.", limit)
}

// decode reads a JSON object into dst: JSON only, unknown fields rejected,
// size-limited, then validated. An empty body decodes as {}.
func (a *API) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := a.ReadBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	} else if err := requireJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return core.E(core.CodeBadRequest, "Malformed JSON: unexpected data after the top-level object.")
	}
	if field, ok := findNUL(reflect.ValueOf(dst), ""); ok {
		return core.Invalid(field, fmt.Sprintf("The %s must not contain NUL characters.", field))
	}
	return a.validateStruct(dst)
}

// findNUL returns the JSON path of the first string holding U+0000, which
// no text column stores (Postgres refuses it).
func findNUL(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return findNUL(v.Elem(), path)
		}
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			return path, true
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p, ok := findNUL(v.Index(i), joinPath(path, strconv.Itoa(i))); ok {
				return p, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if p, ok := findNUL(it.Value(), joinPath(path, fmt.Sprint(it.Key()))); ok {
				return p, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if f.Anonymous {
				name = ""
			}
			if p, ok := findNUL(v.Field(i), joinPath(path, name)); ok {
				return p, true
			}
		}
	}
	return "", false
}

func joinPath(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "." + b
}

func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	cs, hasCS := params["charset"]
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) || (hasCS && !strings.EqualFold(cs, "utf-8")) {
		return core.E(core.CodeUnsupportedMedia, "The request body must be JSON, sent with Content-Type: application/json.")
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return core.E(core.CodeBadRequest, "Malformed JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return core.E(core.CodeBadRequest, "The request body must be a JSON object.")
		}
		return core.Invalid(typ.Field, fmt.Sprintf("The %s %s.", typ.Field, typeWord(typ.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return core.Invalid(f, fmt.Sprintf("The %s field is not allowed.", f))
	}
	return core.E(core.CodeBadRequest, "Malformed JSON.")
}

func typeWord(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "must be a valid ISO 8601 date-time (e.g. 2026-01-15T10:30:00Z)"
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be an integer"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.Slice, reflect.Array:
		return "must be an array"
	}
	return "must be an object"
}

// Time is a request field holding an RFC 3339 timestamp; a bad value is a
// field error naming the field, not a malformed body.
type Time struct{ time.Time }

// UnmarshalJSON parses an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return &json.UnmarshalTypeError{Value: string(b), Type: timeType}
}

// MarshalJSON writes RFC 3339 UTC.
func (t Time) MarshalJSON() ([]byte, error) { return json.Marshal(t.UTC()) }

// Ptr returns the time, or nil for a nil *Time.
func (t *Time) Ptr() *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	return v
}

// validateStruct runs validator/v10 and turns its errors into field messages
// keyed by JSON path ("settings.timezone", "scopes.0").
func (a *API) validateStruct(dst any) error {
	err := a.validate.Struct(dst)
	var verrs validator.ValidationErrors
	if err == nil || !errors.As(err, &verrs) {
		return nil
	}
	var v core.Validation
	for _, fe := range verrs {
		field := fe.Namespace()
		if _, rest, ok := strings.Cut(field, "."); ok {
			field = rest
		}
		field = strings.NewReplacer("[", ".", "]", "").Replace(field)
		v.Add(field, message(field, fe))
	}
	return v.Err()
}

func message(field string, fe validator.FieldError) string {
	kind := fe.Kind()
	unit := ""
	switch kind {
	case reflect.String:
		unit = " characters"
	case reflect.Slice, reflect.Map, reflect.Array:
		unit = " items"
	}
	switch fe.Tag() {
	case "required":
		return fmt.Sprintf("The %s field is required.", field)
	case "max", "lte":
		return fmt.Sprintf("The %s may not be greater than %s%s.", field, fe.Param(), unit)
	case "min", "gte":
		return fmt.Sprintf("The %s must be at least %s%s.", field, fe.Param(), unit)
	case "email":
		return fmt.Sprintf("The %s must be a valid email address.", field)
	case "oneof":
		return fmt.Sprintf("The selected %s is invalid. Use one of: %s.", field, strings.ReplaceAll(fe.Param(), " ", ", "))
	case "url", "http_url":
		return fmt.Sprintf("The %s must be a valid URL.", field)
	case "printascii":
		return fmt.Sprintf("The %s may only contain printable ASCII characters.", field)
	}
	return fmt.Sprintf("The %s is invalid.", field)
}
