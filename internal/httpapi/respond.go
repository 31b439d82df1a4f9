package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/revopsdev/revops/core"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[core.Code]int{
	core.CodeValidation:       http.StatusUnprocessableEntity,
	core.CodeNotFound:         http.StatusNotFound,
	core.CodeUnauthorized:     http.StatusUnauthorized,
	core.CodeAccessDenied:     http.StatusForbidden,
	core.CodeFeatureLimit:     http.StatusForbidden,
	core.CodeRateLimited:      http.StatusTooManyRequests,
	core.CodeInternal:         http.StatusInternalServerError,
	core.CodeBadRequest:       http.StatusBadRequest,
	core.CodeConflict:         http.StatusConflict,
	core.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	core.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	core.CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	core.CodeUnavailable:      http.StatusServiceUnavailable,

	// Two-factor authentication.
	core.CodeTOTPRequired:           http.StatusUnauthorized,
	core.CodeTOTPEnrollmentRequired: http.StatusForbidden,
}

// StatusOf returns the HTTP status of an error code; unknown codes are
// client errors (400), since only the kernel invents server errors.
func StatusOf(c core.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusBadRequest
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, false, "", v) }

// writeJSON writes v as JSON with status; with wrap, in spec 001's
// envelope, {"message":message,"data":v}, message left out when empty.
func writeJSON(w http.ResponseWriter, status int, wrap bool, message string, v any) {
	e := encoders.Get().(*pooledEncoder)
	defer encoders.Put(e)
	e.buf.Reset()
	if err := e.encode(wrap, message, v); err != nil {
		// Only a programming error (an unencodable type) gets here.
		status = http.StatusInternalServerError
		e.buf.Reset()
		e.buf.WriteString(`{"error":"server_error","message":"An unexpected error occurred."}` + "\n")
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if e.buf.Len() > 2048 {
		// net/http sets Content-Length itself for bodies written whole
		// into its 2 KiB buffer; larger ones would go out chunked.
		h["Content-Length"] = []string{strconv.Itoa(e.buf.Len())}
	}
	w.WriteHeader(status)
	w.Write(e.buf.Bytes())
	if e.buf.Cap() > 64<<10 { // do not keep a rare huge buffer alive
		e.buf = bytes.Buffer{}
		e.enc = newEncoder(&e.buf)
	}
}

// jsonContentType is shared by every response's header map: Set and Add
// replace or reallocate the slice, never write into it.
var jsonContentType = []string{"application/json"}

// encoders reuse response buffers: every response is encoded through one.
var encoders = sync.Pool{New: func() any {
	e := &pooledEncoder{}
	e.enc = newEncoder(&e.buf)
	return e
}}

type pooledEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encode writes v, wrapped in the envelope if asked. The envelope is
// written around v rather than encoded as a struct: every response saves a
// reflection pass and an allocation, and the bytes are the same.
func (e *pooledEncoder) encode(wrap bool, message string, v any) error {
	if !wrap {
		return e.enc.Encode(v)
	}
	e.buf.WriteByte('{')
	if message != "" {
		e.buf.WriteString(`"message":`)
		if err := e.enc.Encode(message); err != nil {
			return err
		}
		e.buf.Truncate(e.buf.Len() - 1) // Encode ends with a newline
		e.buf.WriteByte(',')
	}
	e.buf.WriteString(`"data":`)
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	e.buf.Truncate(e.buf.Len() - 1)
	e.buf.WriteString("}\n")
	return nil
}

func newEncoder(w *bytes.Buffer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// WriteError writes err in spec 001's error shape. Causes of internal errors
// are logged with the request id and never sent.
func (a *API) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := core.As(err)
	if errors.Is(err, r.Context().Err()) && r.Context().Err() != nil {
		e = core.E(core.CodeBadRequest, "The request was cancelled.")
	}
	status := StatusOf(e.Code)
	body := map[string]any{}
	maps.Copy(body, e.Extra)
	body["error"] = string(e.Code)
	body["message"] = e.Message
	if len(e.Fields) > 0 {
		body["errors"] = e.Fields
	}
	if status >= 500 {
		id := RequestID(r.Context())
		body["request_id"] = id
		if e.Code == core.CodeInternal { // other 5xx codes carry a message meant for the client
			body["message"] = "An unexpected error occurred."
		}
		a.log.ErrorContext(r.Context(), "request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "error", e.Error())
	}
	if status == http.StatusUnauthorized { // every 401 says how to authenticate (RFC 9110)
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	if st := stateOf(r.Context()); st != nil {
		setDate(w.Header(), st.now)
	}
	WriteJSON(w, status, body)
}

type listEnvelope struct {
	Data  any   `json:"data"`
	Meta  Meta  `json:"meta"`
	Links Links `json:"links"`
}

func (a *API) writeResult(w http.ResponseWriter, r *http.Request, c *Call, out any) {
	rt := c.Route
	setDate(w.Header(), c.At)
	if rt.Status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	data, err := project(out, c.fields)
	if err != nil {
		a.WriteError(w, r, core.Internal(err))
		return
	}
	if rt.Bare {
		WriteJSON(w, rt.Status, data)
		return
	}
	writeJSON(w, rt.Status, true, rt.Message, data)
}

func (a *API) writeList(w http.ResponseWriter, r *http.Request, c *Call, p core.ListParams, items any, n, total int) {
	data, err := project(items, c.fields)
	if err != nil {
		a.WriteError(w, r, core.Internal(err))
		return
	}
	m := pageMeta(p, n, total)
	setDate(w.Header(), c.At)
	WriteJSON(w, http.StatusOK, listEnvelope{Data: data, Meta: m, Links: a.pageLinks(r, m)})
}

// project keeps only the requested JSON members of v (an object or a list
// of objects). With no fields it returns v marshalled as is.
func project(v any, fields []string) (any, error) {
	if len(fields) == 0 { // the common case: encoded once, by WriteJSON
		if isSlice(v) && reflect.ValueOf(v).IsNil() {
			return json.RawMessage("[]"), nil
		}
		return v, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(raw, []byte("null")) && isSlice(v) {
		raw = []byte("[]")
	}
	keep := func(m map[string]json.RawMessage) map[string]json.RawMessage {
		out := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			if val, ok := m[f]; ok {
				out[f] = val
			}
		}
		return out
	}
	if isSlice(v) {
		var arr []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return nil, err
		}
		for i := range arr {
			arr[i] = keep(arr[i])
		}
		return arr, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return keep(m), nil
}

func isSlice(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Slice
}
