package core_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/revopsdev/revops/core"
)

func TestErrorIsMatchesByCode(t *testing.T) {
	err := fmt.Errorf("store: %w", core.NotFound())
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatal("wrapped not-found must match ErrNotFound")
	}
	if errors.Is(err, core.ErrConflict) {
		t.Fatal("not-found must not match ErrConflict")
	}
	if errors.Is(errors.New("plain"), core.ErrNotFound) {
		t.Fatal("plain error must not match")
	}
}

func TestAsWrapsForeignErrorsAsInternal(t *testing.T) {
	cause := errors.New("disk on fire")
	e := core.As(cause)
	if e.Code != core.CodeInternal || !errors.Is(e, cause) {
		t.Fatalf("got %v", e)
	}
	if e.Message == cause.Error() {
		t.Fatal("internal message must not leak the cause")
	}
}

func TestValidationCollects(t *testing.T) {
	var v core.Validation
	if v.Err() != nil {
		t.Fatal("empty validation must be nil")
	}
	v.Add("name", "The name field is required.")
	err := v.Err()
	var e *core.Error
	if !errors.As(err, &e) || e.Code != core.CodeValidation || e.Fields["name"][0] != "The name field is required." {
		t.Fatalf("got %#v", err)
	}
}

func ExampleE() {
	err := core.E(core.CodeConflict, "The slug %q is already taken.", "acme")
	fmt.Println(err)
	// Output: conflict: The slug "acme" is already taken.
}
