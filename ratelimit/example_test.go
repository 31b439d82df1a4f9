package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/revopsdev/revops/ratelimit"
)

// A pro key may spend its burst at once, then refills 5,000 a minute.
func ExampleMemory() {
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	m := ratelimit.NewMemory(func() time.Time { return now })
	pro := ratelimit.DefaultPolicies()["pro"]
	fmt.Println("capacity:", pro.Capacity())

	var admitted int
	for range 7000 {
		if d, _ := m.Allow(context.Background(), "key:42", pro); d.Allowed {
			admitted++
		}
	}
	d, _ := m.Allow(context.Background(), "key:42", pro)
	fmt.Println("admitted at once:", admitted)
	fmt.Println("next one in:", d.RetryAfter)
	// Output:
	// capacity: 6500
	// admitted at once: 6500
	// next one in: 12ms
}
