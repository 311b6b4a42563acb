package validate

import (
	"fmt"
	"regexp/syntax"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxRegexProgramSize is Envoy's default re2.max_program_size.error_level.
const MaxRegexProgramSize = 100

func regexOf(m protoreflect.Message) (string, bool) {
	if rm, ok := m.Interface().(*matcherv3.RegexMatcher); ok {
		return rm.GetRegex(), true
	}
	return "", false
}

// checkRegex compiles re with Go's RE2 syntax (the dialect Envoy and grpc-go
// use) and bounds its program size.
func checkRegex(re string) error {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return fmt.Errorf("regex %q does not compile as RE2: %w", re, err)
	}
	if n := ProgramSize(parsed); n > MaxRegexProgramSize {
		return fmt.Errorf("regex %q is too complex: program size %d exceeds Envoy's limit %d", re, n, MaxRegexProgramSize)
	}
	return nil
}

// ProgramSize approximates RE2's Prog::size() with Go's compiler, which
// shares RE2's instruction set: it counts the instructions of the
// simplified program except capture markers and no-ops, which RE2 does not
// emit for a match-only regex. Counted repetitions are expanded by both, so
// the approximation tracks RE2 closely (within a few instructions).
func ProgramSize(re *syntax.Regexp) int {
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	n := 0
	for _, in := range prog.Inst {
		if in.Op != syntax.InstCapture && in.Op != syntax.InstNop {
			n++
		}
	}
	return n
}
