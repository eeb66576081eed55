package transform

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"sluice/pipeline/workflow"
)

// compression left out takes the format's default; given, it is kept and
// checked against the format.
func TestJobCompressionFollowsTheFormat(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"format: csv":                          "none",
		"format: parquet":                      "snappy",
		"{}":                                   "snappy",
		"{format: csv, compression: gzip}":     "gzip",
		"{format: parquet, compression: zstd}": "zstd",
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			t.Fatal(err)
		}
		spec, err := FromJob(&workflow.JobSpec{Transform: *n.Content[0]})
		if err != nil || spec.Compression != want {
			t.Errorf("%s: compression %q, err %v; want %q", src, spec.Compression, err, want)
		}
	}
	var n yaml.Node
	_ = yaml.Unmarshal([]byte("{format: csv, compression: snappy}"), &n)
	if _, err := FromJob(&workflow.JobSpec{Transform: *n.Content[0]}); err == nil || !strings.Contains(err.Error(), "compression") {
		t.Errorf("csv with snappy: %v, want an error naming compression", err)
	}
}
