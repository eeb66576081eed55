package segmentgen

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Source is one Segment source, i.e. one folder below segment-logs/.
type Source struct {
	ID       string // folder name, e.g. "ios"
	Platform string // "iOS" or "Android": decides the shape of the events
}

// Config says what to generate. Zero counts take the defaults of
// DefaultConfig; zero rates mean "none".
type Config struct {
	Seed int64
	// Start is the first event date; only its calendar date is used, read
	// in America/Los_Angeles.
	Start         time.Time
	Days          int
	EventsPerDay  int // per source and Pacific day, before duplicates
	Sources       []Source
	FilesPerDay   int     // files per source per received-day folder
	DuplicateRate float64 // share of events written a second time
	LateRate      float64 // share of events received 1-3 days late
	MalformedRate float64 // extra broken lines, as a share of events
	Prefix        string  // key prefix, default "segment-logs/"
	Concurrency   int     // files rendered at once, default GOMAXPROCS
}

// DefaultConfig is three Pacific days around the 2024 spring DST change, two
// sources, 2000 events per source per day.
func DefaultConfig() Config {
	return Config{
		Seed:          1,
		Start:         time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC),
		Days:          3,
		EventsPerDay:  2000,
		Sources:       []Source{{ID: "ios", Platform: "iOS"}, {ID: "android", Platform: "Android"}},
		FilesPerDay:   4,
		DuplicateRate: 0.01,
		LateRate:      0.02,
		MalformedRate: 0.002,
		Prefix:        "segment-logs/",
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	if c.Days == 0 {
		c.Days = d.Days
	}
	if c.EventsPerDay == 0 {
		c.EventsPerDay = d.EventsPerDay
	}
	if len(c.Sources) == 0 {
		c.Sources = d.Sources
	}
	if c.FilesPerDay == 0 {
		c.FilesPerDay = d.FilesPerDay
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	return c
}

func (c Config) validate() error {
	if c.Days < 0 || c.EventsPerDay < 0 || c.FilesPerDay < 0 {
		return errors.New("negative count")
	}
	for _, r := range []float64{c.DuplicateRate, c.LateRate, c.MalformedRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("rate %v outside [0,1]", r)
		}
	}
	seen := map[string]bool{}
	for _, s := range c.Sources {
		if s.ID == "" || seen[s.ID] {
			return fmt.Errorf("source id %q empty or repeated", s.ID)
		}
		seen[s.ID] = true
		if s.Platform != "iOS" && s.Platform != "Android" {
			return fmt.Errorf("source %s: platform %q is not iOS or Android", s.ID, s.Platform)
		}
	}
	return nil
}
