package sqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestRetryDeadlock: a statement PostgreSQL ended as a deadlock's victim
// runs again (twice at most); any other error, or success, ends it.
func TestRetryDeadlock(t *testing.T) {
	deadlock := fmt.Errorf("claim: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
	for _, c := range []struct {
		errs []error // what each run returns; the last is the result
		runs int
	}{
		{[]error{nil}, 1},
		{[]error{deadlock, nil}, 2},
		{[]error{deadlock, deadlock, nil}, 3},
		{[]error{deadlock, deadlock, deadlock}, 3},
		{[]error{errors.New("other")}, 1},
		{[]error{&pgconn.PgError{Code: "23505"}}, 1},
	} {
		runs := 0
		err := retryDeadlock(func() error { runs++; return c.errs[runs-1] })
		if want := c.errs[len(c.errs)-1]; runs != c.runs || !errors.Is(err, want) {
			t.Errorf("%v: %d runs, %v; want %d runs, %v", c.errs, runs, err, c.runs, want)
		}
	}
}
