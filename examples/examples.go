// Package examples ships the example mesh inside the binary, so that
// `rosen serve` works from any folder with nothing else installed.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed bookinfo/*.yaml
var files embed.FS

// Bookinfo returns the bookinfo example's files.
func Bookinfo() fs.FS {
	sub, err := fs.Sub(files, "bookinfo")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}
	return sub
}

// WriteBookinfo writes the bookinfo example into dir, replacing the files
// that are there, so it can be served and watched like any config folder.
func WriteBookinfo(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("example folder %s: %w", dir, err)
	}
	return fs.WalkDir(Bookinfo(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Bookinfo(), path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), data, 0o644)
	})
}
