package transform

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"sluice/pipeline/workflow"
)

// FromJob decodes and validates a workflow job step's transform block.
func FromJob(j *workflow.JobSpec) (Spec, error) {
	spec, err := DecodeJob(j)
	if err != nil {
		return spec, err
	}
	if j.Iceberg() && spec.Format != "parquet" {
		// Iceberg's data files here are Sluice's Parquet files.
		return spec, fmt.Errorf("format: %q: an Iceberg table (table.format iceberg) is written as parquet", spec.Format)
	}
	return spec, spec.Validate()
}

// DecodeJob decodes a job step's transform block over the defaults,
// refusing unknown fields, without validating it.
func DecodeJob(j *workflow.JobSpec) (Spec, error) {
	spec := DefaultSpec()
	if j.Transform.Kind == 0 {
		return spec, nil
	}
	// compression's default follows the format (snappy for Parquet, none
	// for CSV): left out, it is the format's first.
	spec.Compression = ""
	if err := decodeStrict(&j.Transform, &spec); err != nil {
		return spec, err
	}
	if ff, err := spec.FileFormat(); err == nil && spec.Compression == "" {
		spec.Compression = ff.Compressions()[0]
	}
	return spec, nil
}

// ValidateJob is the workflow loader's check of a job's transform block
// (workflow.Load).
func ValidateJob(j *workflow.JobSpec) error {
	_, err := FromJob(j)
	return err
}

// decodeStrict decodes a YAML node refusing unknown fields, so that a
// typo in a job spec fails at start instead of being ignored.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}
