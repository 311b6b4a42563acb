package folderwatch

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rosenmesh/rosen/internal/plainfile"
)

// MaxFileSize bounds one policy or rate-limit file (plainfile.MaxSize, as
// config files are bounded).
const MaxFileSize = plainfile.MaxSize

// CheckTree refuses, under path (a folder or one file), any visible file
// that is not a regular file (a named pipe would block the reader, and with
// it every later reload, for ever) or is larger than MaxFileSize. Names
// starting with "." (a ConfigMap's ..data, editor files) are skipped, as
// the loaders skip them; symlinks are followed.
func CheckTree(path string) error {
	root, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		return checkInfo(p, info)
	})
}

func checkInfo(p string, info fs.FileInfo) error {
	if err := plainfile.Check(info); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// ReadFile reads one regular file of at most MaxFileSize bytes; it opens
// without blocking, so a named pipe is an error, not a hang.
func ReadFile(path string) ([]byte, error) {
	data, err := plainfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
