// Package benchratio reports a benchmark as a ratio against a bare baseline
// run in the same process, right after it, for the same number of iterations.
package benchratio

import (
	"testing"
	"time"
)

// Report times b.N runs of baseline (outside the benchmark's own timer) and
// reports the benchmark's time per op divided by the baseline's as
// "x_baseline". Call it after the b.Loop loop.
func Report(b *testing.B, baseline func()) {
	b.Helper()
	elapsed, n := b.Elapsed(), b.N
	if n == 0 || elapsed <= 0 {
		return
	}
	start := time.Now()
	for range n {
		baseline()
	}
	base := time.Since(start)
	if base <= 0 {
		base = time.Nanosecond
	}
	b.ReportMetric(float64(elapsed)/float64(base), "x_baseline")
	b.ReportMetric(float64(base.Nanoseconds())/float64(n), "baseline_ns/op")
}
