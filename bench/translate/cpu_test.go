package translatebench

import (
	"testing"
	"time"
)

// loop runs body as b.Loop does and reports, beside the wall time, the
// process's CPU time per operation (cpu-ms/op). On a shared machine whose
// load average is several times its core count, wall time per op swings by
// 2x between runs; CPU time is far steadier.
func loop(b *testing.B, body func()) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	start, n := processCPU(), 0
	for b.Loop() {
		body()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(n)/float64(time.Millisecond), "cpu-ms/op")
	}
}
