package file

import (
	"crypto/sha256"
	"os"
	"time"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// racyWindow is how recent a file's modification time may be for its
// (size, mtime) to be trusted without reading it: a file written again
// within its file system's timestamp granularity (up to 2 s on some) can
// change without its mtime changing, so such a file is read and its content
// hash compared (git's "racily clean" rule).
const racyWindow = 2 * time.Second

// parseCache keeps the objects parsed from each file, so that a change
// re-parses only the files that changed: a file whose size and mtime are
// unchanged (and not racily recent) is not even read; one whose content
// hash is unchanged is not parsed. Parse errors are kept too: a broken file
// stays broken until it changes. Not safe for concurrent use (the source's
// loop owns it).
type parseCache struct {
	files map[string]*parsedFile
	now   func() time.Time
}

type parsedFile struct {
	size   int64
	mtime  time.Time
	readAt time.Time // when the content was last read
	sum    [32]byte
	objs   []*config.Object
	err    error
}

// loadStats says how much work a load did.
type loadStats struct {
	files, parsed, read int
}

func newParseCache() *parseCache {
	return &parseCache{files: map[string]*parsedFile{}, now: time.Now}
}

// load is config.LoadDirs with the cache: the same files, objects, order
// and errors.
func (c *parseCache) load(dirs []string) (*config.Set, loadStats, error) {
	paths, err := config.ListFiles(dirs...)
	if err != nil {
		return nil, loadStats{}, err
	}
	st := loadStats{files: len(paths)}
	next := make(map[string]*parsedFile, len(paths))
	var objs []*config.Object
	var errs model.Errors
	for _, path := range paths {
		pf, err := c.file(path, &st)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[path] = pf
		objs = append(objs, pf.objs...)
		if pf.err != nil {
			if es, ok := pf.err.(model.Errors); ok {
				errs = append(errs, es...)
			} else {
				errs = append(errs, pf.err)
			}
		}
	}
	c.files = next // forget removed files
	set, derrs := config.NewSet(objs)
	errs = append(errs, derrs...)
	if len(errs) > 0 {
		return nil, st, errs
	}
	return set, st, nil
}

// file returns the parsed form of path, from the cache when it is current.
func (c *parseCache) file(path string, st *loadStats) (*parsedFile, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, model.Errorf(model.Source{File: path}, "", "cannot read: %v", err)
	}
	prev := c.files[path]
	if prev != nil && prev.size == info.Size() && prev.mtime.Equal(info.ModTime()) &&
		info.ModTime().Before(prev.readAt.Add(-racyWindow)) {
		return prev, nil
	}
	readAt := c.now()
	// config.ReadFile, like `rosen validate`: a named pipe, a device (a
	// symlink to /dev/zero) or a huge file is an error naming the file,
	// never a read that blocks every later reload or exhausts memory.
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st.read++
	sum := sha256.Sum256(data)
	if prev != nil && prev.sum == sum {
		return &parsedFile{size: int64(len(data)), mtime: info.ModTime(), readAt: readAt, sum: sum, objs: prev.objs, err: prev.err}, nil
	}
	st.parsed++
	var prevObjs []*config.Object
	if prev != nil {
		prevObjs = prev.objs
	}
	objs, perr := config.ParseYAMLReusing(path, data, prevObjs)
	return &parsedFile{size: int64(len(data)), mtime: info.ModTime(), readAt: readAt, sum: sum, objs: objs, err: perr}, nil
}
