package participant_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test, the bad-input ones included, ends with no goroutine left behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
