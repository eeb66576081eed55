package transform

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // DST rules must not depend on the host's zoneinfo
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
	Format         string   `yaml:"format"`          // "parquet" or "csv"
	Compression    string   `yaml:"compression"`     // parquet: snappy|zstd|gzip|none; csv: gzip|none
	ShardBytes     int64    `yaml:"shard_bytes"`     // target compressed input bytes per map shard
}

// DefaultSpec is the Glue "mobile-user-daily" job.
func DefaultSpec() Spec {
	return Spec{
		Sources: []Source{
			{Name: "ios", Path: "segment-logs/ios/"},
			{Name: "android", Path: "segment-logs/android/"},
		},
		Drop:           []string{"integrations", "_metadata"},
		TimestampField: "timestamp",
		TimeZone:       "America/Los_Angeles",
		DedupeKey:      "messageId",
		Format:         "parquet",
		Compression:    "snappy",
		ShardBytes:     128 << 20,
	}
}

// Validate reports the first bad field by its YAML name.
func (s Spec) Validate() error {
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
	if _, err := time.LoadLocation(s.TimeZone); err != nil {
		return fmt.Errorf("time_zone: %w", err)
	}
	switch s.Format {
	case "parquet":
		switch s.Compression {
		case "", "snappy", "zstd", "gzip", "none":
		default:
			return fmt.Errorf("compression: %q is not snappy, zstd, gzip or none", s.Compression)
		}
	case "csv":
		switch s.Compression {
		case "", "gzip", "none":
		default:
			return fmt.Errorf("compression: %q is not gzip or none for csv", s.Compression)
		}
	default:
		return fmt.Errorf("format: %q is not parquet or csv", s.Format)
	}
	if s.ShardBytes <= 0 {
		return fmt.Errorf("shard_bytes: %d must be positive", s.ShardBytes)
	}
	return nil
}

// Date is a civil date (no time, no zone). The zero Date is not valid.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return DateOf(t), nil
}

// DateOf is the date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// UTCMidnight is the instant the date starts in UTC.
func (d Date) UTCMidnight() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays is d moved by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.UTCMidnight().AddDate(0, 0, n)) }

// Compare is -1, 0 or +1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int { return d.UTCMidnight().Compare(o.UTCMidnight()) }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// MarshalText writes YYYY-MM-DD, so Dates can be JSON map keys.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// days is the number of days since 1970-01-01.
func (d Date) days() int64 { return floorDiv(d.UTCMidnight().Unix(), 86400) }

func dateFromDays(n int64) Date { return DateOf(time.Unix(n*86400, 0).UTC()) }

// PartitionPath is the Hive folder of the date, ending in "/":
// year=2026/month=3/date=2026-03-08/ (year and month without padding).
func (d Date) PartitionPath() string {
	return fmt.Sprintf("year=%d/month=%d/date=%s/", d.Year, int(d.Month), d)
}

// Window is an inclusive range of local dates.
type Window struct {
	Start, End Date
}

// Validate checks that both ends are set and in order.
func (w Window) Validate() error {
	if w.Start.IsZero() || w.End.IsZero() {
		return errors.New("window: start and end are required")
	}
	if w.End.Compare(w.Start) < 0 {
		return fmt.Errorf("window: end %s before start %s", w.End, w.Start)
	}
	return nil
}

// Dates lists every date of the window in order.
func (w Window) Dates() []Date {
	var out []Date
	for d := w.Start; d.Compare(w.End) <= 0; d = d.AddDays(1) {
		out = append(out, d)
	}
	return out
}

// Contains reports whether d is inside the window.
func (w Window) Contains(d Date) bool { return d.Compare(w.Start) >= 0 && d.Compare(w.End) <= 0 }

func (w Window) String() string { return w.Start.String() + "_" + w.End.String() }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
