package placeholder_test

import (
	"testing"

	"github.com/rosenmesh/rosen/txn/placeholder"
)

func TestDollar(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                             "SELECT 1",
		"UPDATE t SET a = ? WHERE b = ? AND c": "UPDATE t SET a = $1 WHERE b = $2 AND c",
		"VALUES (?,?,?,?,?,?,?,?,?,?,?)":       "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
	} {
		if got := placeholder.Dollar(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
