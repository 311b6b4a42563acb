package config

import (
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/internal/plainfile"
)

// MaxFileSize bounds one config file (plainfile.MaxSize).
const MaxFileSize = plainfile.MaxSize

// ReadFile reads one config file, refusing anything but a regular file of at
// most MaxFileSize bytes. It opens without blocking, so a named pipe dropped
// into a config folder cannot hang every later reload.
func ReadFile(path string) ([]byte, error) {
	data, err := plainfile.Read(path)
	if err == nil {
		return data, nil
	}
	if plainfile.IsRefused(err) {
		return nil, model.Errorf(model.Source{File: path}, "", "%v", err)
	}
	return nil, model.Errorf(model.Source{File: path}, "", "cannot read: %v", err)
}
