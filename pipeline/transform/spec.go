package transform

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/expr"
	"sluice/pipeline/format"
	"sluice/pipeline/format/formats"
)

// Source is one Segment source: a name (ios, android) and the key prefix of
// its received-day folders in the input bucket.
type Source struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"` // e.g. "segment-logs/ios/"
}

// Spec describes the job. It is filled from the workflow YAML.
type Spec struct {
	Sources        []Source `yaml:"sources"`
	Drop           []string `yaml:"drop"`            // top-level fields removed before flattening
	TimestampField string   `yaml:"timestamp_field"` // top-level RFC 3339 field placing the event
	TimeZone       string   `yaml:"time_zone"`       // IANA name; the output date is local to it
	DedupeKey      string   `yaml:"dedupe_key"`      // top-level field, one row per value
	Format         string   `yaml:"format"`          // a file format's name (pipeline/format/formats): parquet, csv
	Compression    string   `yaml:"compression"`     // one of the format's Compressions; "" is its default
	// ShardBytes is the most compressed input one map task reads; the
	// planner cuts smaller shards when that spreads the work better over
	// the fleet (see pipeline/job).
	ShardBytes int64 `yaml:"shard_bytes"`
	// TargetFileBytes is the size output files aim at: each date is split
	// into as many files (and reduce tasks) as its estimated output needs.
	TargetFileBytes int64 `yaml:"target_file_bytes"`
	// Columns pins the type of source fields (paths joined with ".", as
	// "properties.score"), as Glue's ApplyMapping does: the column has that
	// type in every file, and a value it cannot hold exactly is
	// quarantined (ReasonTypeMismatch) instead of widening the column.
	Columns ColumnPins `yaml:"columns"`
	// DedupeHorizonDays is how many days around a rebuilt date the job
	// looks for copies of its keys already published in partitions the
	// run does not rebuild (see pipeline/job); 0 looks only within the
	// run.
	DedupeHorizonDays int `yaml:"dedupe_horizon_days"`
	// Where keeps the rows for which this CEL expression holds (see
	// pipeline/expr); the others are counted as filtered out.
	Where string `yaml:"where,omitempty"`
	// Derive adds columns computed by CEL expressions.
	Derive []expr.Derive `yaml:"derive,omitempty"`
	// Rename maps output column names (as the flattener makes them) to
	// the names the table gives them.
	Rename map[string]string `yaml:"rename,omitempty"`
}

// ColumnPins are pinned column types by source path (Spec.Columns).
type ColumnPins map[string]column.Type

// UnmarshalYAML reads the pins, naming the path of a type it does not
// know.
func (p *ColumnPins) UnmarshalYAML(n *yaml.Node) error {
	var raw map[string]string
	if err := n.Decode(&raw); err != nil {
		return fmt.Errorf("columns: %w", err)
	}
	*p = ColumnPins{}
	for _, path := range slices.Sorted(maps.Keys(raw)) {
		var t column.Type
		if err := t.UnmarshalText([]byte(raw[path])); err != nil {
			return fmt.Errorf("columns.%s: %q is not a column type (string, boolean, bigint or double)", path, raw[path])
		}
		(*p)[path] = t
	}
	return nil
}

// DefaultSpec is the Glue "mobile-user-daily" job.
func DefaultSpec() Spec {
	return Spec{
		Sources: []Source{
			{Name: "ios", Path: "segment-logs/ios/"},
			{Name: "android", Path: "segment-logs/android/"},
		},
		Drop:              []string{"integrations", "_metadata"},
		TimestampField:    "timestamp",
		TimeZone:          "America/Los_Angeles",
		DedupeKey:         "messageId",
		Format:            "parquet",
		Compression:       "snappy",
		ShardBytes:        64 << 20,
		TargetFileBytes:   256 << 20,
		DedupeHorizonDays: 1,
	}
}

// Validate reports the first bad field by its YAML name.
func (s Spec) Validate() error {
	if errs := s.Problems(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Problems lists what is wrong with the spec, each naming its YAML field:
// the first bad field of the plain settings, then every problem of where,
// derive and rename (ExprProblems).
func (s Spec) Problems() []error {
	var errs []error
	if err := s.validateFields(); err != nil {
		errs = append(errs, err)
	}
	return append(errs, s.ExprProblems()...)
}

func (s Spec) validateFields() error {
	if len(s.Sources) == 0 {
		return errors.New("sources: at least one source is required")
	}
	names := map[string]bool{}
	for i, src := range s.Sources {
		if src.Name == "" {
			return fmt.Errorf("sources[%d].name: empty", i)
		}
		if names[src.Name] {
			return fmt.Errorf("sources[%d].name: duplicate %q", i, src.Name)
		}
		names[src.Name] = true
		if src.Path == "" || strings.HasPrefix(src.Path, "/") {
			return fmt.Errorf("sources[%d].path: %q must be a relative key prefix", i, src.Path)
		}
	}
	if s.TimestampField == "" {
		return errors.New("timestamp_field: empty")
	}
	if s.DedupeKey == "" {
		return errors.New("dedupe_key: empty")
	}
	if s.DedupeKey == s.TimestampField {
		return errors.New("dedupe_key: must differ from timestamp_field")
	}
	if s.TimeZone == "" {
		return errors.New("time_zone: empty")
	}
	if _, err := civil.LoadZone(s.TimeZone); err != nil {
		return fmt.Errorf("time_zone: %w", err)
	}
	ff, err := formats.ByName(s.Format)
	if err != nil {
		return fmt.Errorf("format: %w", err)
	}
	if cs := ff.Compressions(); s.Compression != "" && !slices.Contains(cs, s.Compression) {
		return fmt.Errorf("compression: %q is not %s or %s for %s", s.Compression, strings.Join(cs[:len(cs)-1], ", "), cs[len(cs)-1], s.Format)
	}
	if s.ShardBytes <= 0 {
		return fmt.Errorf("shard_bytes: %d must be positive", s.ShardBytes)
	}
	if s.TargetFileBytes <= 0 {
		return fmt.Errorf("target_file_bytes: %d must be positive", s.TargetFileBytes)
	}
	if s.DedupeHorizonDays < 0 || s.DedupeHorizonDays > 31 {
		return fmt.Errorf("dedupe_horizon_days: %d is not between 0 and 31", s.DedupeHorizonDays)
	}
	for _, path := range slices.Sorted(maps.Keys(s.Columns)) {
		switch t := s.Columns[path]; {
		case path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, ".."):
			return fmt.Errorf("columns: %q is not a source path (fields joined with \".\", as properties.score)", path)
		case path == s.DedupeKey || path == s.TimestampField:
			return fmt.Errorf("columns.%s: the dedupe key and the timestamp field have fixed types", path)
		case t != column.TypeString && t != column.TypeBool && t != column.TypeBigint && t != column.TypeDouble:
			return fmt.Errorf("columns.%s: %s cannot be pinned (string, boolean, bigint or double)", path, t)
		}
	}
	return nil
}

// PartitionPath is the Hive folder of a date's partition, ending in "/":
// year=2026/month=3/date=2026-03-08/ (year and month without padding, as
// Spark writes them).
func PartitionPath(d civil.Date) string {
	return fmt.Sprintf("year=%d/month=%d/date=%s/", d.Year, int(d.Month), d)
}

// FileFormat is the file format of the job's output.
func (s Spec) FileFormat() (format.Format, error) {
	ff, err := formats.ByName(s.Format)
	if err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	return ff, nil
}

// FormatOptions are what the file format needs of the spec.
func (s Spec) FormatOptions() format.Options {
	return format.Options{Compression: s.Compression, TimeZone: s.TimeZone}
}

// FileExt is the extension of the job's output files.
func (s Spec) FileExt() string {
	if ff, err := s.FileFormat(); err == nil {
		return ff.Ext(s.Compression)
	}
	return s.Format
}
