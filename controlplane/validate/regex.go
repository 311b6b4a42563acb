package validate

import (
	"errors"
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

// RegexTooComplex reports a regex (one that compiles as RE2) whose program
// is larger than Envoy accepts, so that sources can name their own field
// instead of the Envoy path the gate would name.
func RegexTooComplex(re string) error {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil // not ours to report: the caller checks compilation
	}
	if n := envoyProgramSize(re, parsed); n > MaxRegexProgramSize {
		return fmt.Errorf("%w: program size %d exceeds Envoy's limit %d (re2.max_program_size)", ErrRegexTooComplex, n, MaxRegexProgramSize)
	}
	return nil
}

// ErrRegexTooComplex is RegexTooComplex's error.
var ErrRegexTooComplex = errors.New("regex too complex")

// checkRegex compiles re with Go's RE2 syntax (the dialect Envoy and grpc-go
// use) and bounds its program size by Envoy's limit. grpc-go runs regexes
// with Go's regexp, which has no such limit, but the limit is applied to
// every regex: the same config may reach Envoy proxies.
func checkRegex(re string) error {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return fmt.Errorf("regex %q does not compile as RE2: %w", re, err)
	}
	if n := envoyProgramSize(re, parsed); n > MaxRegexProgramSize {
		return fmt.Errorf("regex %q is too complex: program size %d exceeds Envoy's limit %d", re, n, MaxRegexProgramSize)
	}
	return nil
}

// envoyProgramSize is the program size Envoy's RE2 gives re (parsed is
// its parse): exact, or an upper bound when re has identical adjacent
// alternatives (see dedupeAlternatives).
func envoyProgramSize(re string, parsed *syntax.Regexp) int {
	if rewritten, dups := dedupeAlternatives(re); dups > 0 {
		if p, err := syntax.Parse(rewritten, syntax.Perl); err == nil {
			parsed = p
		}
	}
	return ProgramSize(parsed)
}

// ProgramSize returns the size RE2 reports for re (RE2::ProgramSize(), the
// figure Envoy checks against re2.max_program_size), computed by a Go port
// of RE2's simplifier, compiler and program flattening (re2size*.go). re
// must come from syntax.Parse with syntax.Perl, the flags of RE2's default
// options.
func ProgramSize(re *syntax.Regexp) int {
	return re2ProgramSize(re)
}
