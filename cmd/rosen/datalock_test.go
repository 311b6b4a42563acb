package main

import (
	"strings"
	"testing"
)

func TestLockDataRefusesASecondHolder(t *testing.T) {
	dir := t.TempDir()
	release, err := lockData(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockData(dir) // a second open file description, as a second process would have
	if err == nil || !strings.Contains(err.Error(), "in use by another rosen process") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock on %s: %v, want 'in use by another rosen process' naming the folder", dir, err)
	}
	release()
	release() // harmless twice
	again, err := lockData(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

func TestLockDataCreatesTheFolder(t *testing.T) {
	dir := t.TempDir() + "/a/b"
	release, err := lockData(dir)
	if err != nil {
		t.Fatal(err)
	}
	release()
}
