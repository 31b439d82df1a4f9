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
		errs  []error // what each run returns
		runs  int
		final error
	}{
		{[]error{nil}, 1, nil},
		{[]error{deadlock, nil}, 2, nil},
		{[]error{deadlock, deadlock, nil}, 3, nil},
		{[]error{deadlock, deadlock, deadlock}, 3, deadlock},
		{[]error{errors.New("other")}, 1, nil},
		{[]error{&pgconn.PgError{Code: "23505"}}, 1, nil},
	} {
		runs := 0
		err := retryDeadlock(func() error { runs++; return c.errs[runs-1] })
		want := c.errs[len(c.errs)-1]
		if c.final != nil {
			want = c.final
		}
		if runs != c.runs || !errors.Is(err, want) && err != want {
			t.Errorf("%v: %d runs, %v; want %d runs, %v", c.errs, runs, err, c.runs, want)
		}
	}
}
