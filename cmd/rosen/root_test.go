package main

import (
	"strings"
	"testing"
)

// A bad log level or format from the environment is named as such (a
// fresh-user trial's ROSEN_LOG_LEVEL=loud was reported as --log-level).
func TestLogSettingsNameTheirVariable(t *testing.T) {
	for _, g := range []globalFlags{{logLevel: "loud", logFormat: "auto"}, {logLevel: "info", logFormat: "xml"}} {
		_, err := g.logger()
		if err == nil || (!strings.Contains(err.Error(), "ROSEN_LOG_LEVEL") && !strings.Contains(err.Error(), "ROSEN_LOG_FORMAT")) || !strings.Contains(err.Error(), `"`) {
			t.Errorf("%+v: %v", g, err)
		}
	}
}
