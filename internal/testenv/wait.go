package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after timeout (a
// watchdog far beyond what the case needs, not a timing assertion).
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
