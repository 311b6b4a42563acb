package config

import (
	"io"
	"os"
	"syscall"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// MaxFileSize bounds one config file. Real mesh config is kilobytes to a few
// megabytes; the bound keeps a runaway file (or a symlink to /dev/zero) from
// taking the process down.
const MaxFileSize = 64 << 20

// ReadFile reads one config file, refusing anything but a regular file of at
// most MaxFileSize bytes. It opens without blocking, so a named pipe dropped
// into a config folder cannot hang every later reload.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, model.Errorf(model.Source{File: path}, "", "cannot read: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, model.Errorf(model.Source{File: path}, "", "cannot read: %v", err)
	}
	if !info.Mode().IsRegular() {
		return nil, model.Errorf(model.Source{File: path}, "", "not a regular file (%s); config files must be plain files", info.Mode().Type())
	}
	if info.Size() > MaxFileSize {
		return nil, model.Errorf(model.Source{File: path}, "", "file is %d bytes; the limit is %d", info.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, model.Errorf(model.Source{File: path}, "", "cannot read: %v", err)
	}
	if len(data) > MaxFileSize {
		return nil, model.Errorf(model.Source{File: path}, "", "file grew past the limit of %d bytes while being read", MaxFileSize)
	}
	return data, nil
}
