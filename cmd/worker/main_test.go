package main

import (
	"bytes"
	"strings"
	"testing"
)

// worker version prints the build, as scheduler version does.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"version"}, &out); err != nil || !strings.HasPrefix(out.String(), "worker ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("worker version: %q, %v", out.String(), err)
	}
}
