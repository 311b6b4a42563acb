package config

import (
	"bytes"
	"strings"
)

// document is one YAML document of a multi-document file.
type document struct {
	// text is the document, starting at the line after its "---" separator
	// (or at the top of the file), so that YAML error lines are relative to
	// firstLine.
	text []byte
	// firstLine is the 1-based line number of text's first line in the file.
	firstLine int
	// line is the 1-based line of the document's first content line (neither
	// blank nor a comment): where an operator should look.
	line int
}

// splitDocuments splits a multi-document YAML stream on "---" lines, dropping
// documents that hold only blank lines and comments.
func splitDocuments(data []byte) []document {
	var docs []document
	lines := bytes.SplitAfter(data, []byte("\n"))
	start, content := 0, 0 // index of the document's first line; of its first content line (0 = none yet, else index+1)
	flush := func(end int) {
		if content != 0 {
			docs = append(docs, document{
				text:      bytes.Join(lines[start:end], nil),
				firstLine: start + 1,
				line:      content,
			})
		}
	}
	for i, raw := range lines {
		l := strings.TrimRight(string(raw), " \t\r\n")
		if isSeparator(l) {
			flush(i)
			start, content = i+1, 0
			continue
		}
		if l == "..." { // explicit document end marker
			flush(i)
			start, content = i+1, 0
			continue
		}
		t := strings.TrimSpace(l)
		if content == 0 && t != "" && !strings.HasPrefix(t, "#") {
			content = i + 1
		}
	}
	flush(len(lines))
	return docs
}

// isSeparator reports whether a line (right-trimmed) starts a new document:
// "---" alone or followed by a comment.
func isSeparator(l string) bool {
	if !strings.HasPrefix(l, "---") {
		return false
	}
	rest := strings.TrimSpace(l[3:])
	return rest == "" || strings.HasPrefix(rest, "#")
}
