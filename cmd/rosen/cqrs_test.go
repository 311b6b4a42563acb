package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// An edit of the CQRS files while the engine runs is logged (it is not
// applied until a restart); it was silent, and a fresh-user trial took the
// edit for applied.
func TestCQRSEditsAreLogged(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rulesFile, []byte(`{"rules":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f := &cqrsFlags{dir: dir}
	go func() { f.watchEdits(ctx, zap.New(core), 10*time.Millisecond); close(done) }()
	time.Sleep(50 * time.Millisecond) // the first fingerprint is taken
	if err := os.WriteFile(rulesFile, []byte(`{"rules":[{"event":"x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the edit's log line", 10*time.Second, func() bool {
		return logs.FilterMessageSnippet("CQRS configuration edited").Len() > 0
	})
	cancel()
	<-done // the watchers end with the context
}

func TestPrintDeadLetters(t *testing.T) {
	var out strings.Builder
	body := `{"deadLetters":[{"seq":9,"eventSeq":41,"rule":"orders","reason":"column id: \"abc\" is not an integer\u001b[2J","time":"2026-12-04T23:40:00Z","event":{"type":"orderPlaced"}},
	{"seq":8,"eventSeq":40,"rule":"orders","reason":"too big","time":"2026-12-04T23:39:00Z","omitted":"event data too large for a dead letter"}]}`
	if err := printDeadLetters(&out, []byte(body)); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsRune(s, 0x1b) || !strings.Contains(s, "41") || !strings.Contains(s, "not an integer") ||
		!strings.Contains(s, "event not stored here") || strings.Count(s, "\n") != 3 {
		t.Fatalf("table:\n%s", s)
	}
	out.Reset()
	if err := printDeadLetters(&out, []byte(`{"deadLetters":[]}`)); err != nil || out.String() != "no dead letters\n" {
		t.Fatalf("%q %v", out.String(), err)
	}
}
