package plainfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(ok, []byte("x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := Read(ok); err != nil || string(data) != "x: 1\n" {
		t.Fatalf("%q %v", data, err)
	}
	// A file over the limit (sparse: no 64 MiB written) is refused by size.
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxSize + 1); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := Read(big); !IsRefused(err) || !strings.Contains(err.Error(), "the limit is") {
		t.Fatalf("big: %v", err)
	}
	// A named pipe with no writer is refused at once, not waited on.
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err) // Linux, where CI runs: a skip would hide the test
	}
	if _, err := Read(fifo); !IsRefused(err) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("fifo: %v", err)
	}
	if _, err := Read(dir); !IsRefused(err) {
		t.Fatalf("folder: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil || IsRefused(err) {
		t.Fatalf("missing: %v", err)
	}
}
