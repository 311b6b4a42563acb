package coordinator

import (
	"regexp"
	"strings"
	"testing"
)

// validID replaced a regexp on the hot path: it must accept exactly what the regexp accepted.
func TestValidIDIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)
	ids := []string{"", "a", "A", "0", "-a", ".a", "a-", "a.b_c:d@e-f", "a b", "a/b", "é", "a\x00", "a\n", strings.Repeat("x", 128), strings.Repeat("x", 129), "_a", "@a", "Z9"}
	for c := 0; c < 256; c++ {
		ids = append(ids, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}))
	}
	for _, id := range ids {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, regexp says %v", id, got, want)
		}
	}
}
