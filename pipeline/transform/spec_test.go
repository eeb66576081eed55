package transform

import (
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Spec){
		"sources":           func(s *Spec) { s.Sources = nil },
		"time_zone":         func(s *Spec) { s.TimeZone = "Mars/Olympus" },
		"format":            func(s *Spec) { s.Format = "orc" },
		"compression":       func(s *Spec) { s.Compression = "lz4" },
		"shard_bytes":       func(s *Spec) { s.ShardBytes = 0 },
		"target_file_bytes": func(s *Spec) { s.TargetFileBytes = -1 },
		"dedupe_key":        func(s *Spec) { s.DedupeKey = "" },
		"timestamp_field":   func(s *Spec) { s.TimestampField = "" },
	}
	for field, mutate := range cases {
		s := DefaultSpec()
		mutate(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
	s := DefaultSpec()
	s.Format, s.Compression = "csv", "snappy"
	if err := s.Validate(); err == nil {
		t.Error("csv with snappy accepted")
	}
	// A folder of the zoneinfo tree is not a zone: say what is expected.
	s = DefaultSpec()
	s.TimeZone = "Pacific"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "IANA time zone name") {
		t.Errorf("time_zone Pacific: %v", err)
	}
}

// Validate reports the problems of the expressions too.
func TestSpecValidateExpressions(t *testing.T) {
	t.Parallel()
	s := DefaultSpec()
	s.Where = `type == `
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "where: ") {
		t.Errorf("Validate: %v, want the where's problem", err)
	}
}
