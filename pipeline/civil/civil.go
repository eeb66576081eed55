// Package civil is the calendar date and the inclusive range of dates that
// every part of Sluice speaks: a run's window, an output partition, a
// bookmark. A Date has no time zone: the job decides which zone's calendar
// an event's date is read in.
package civil

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zone rules must not depend on the host's zoneinfo
)

// Date is a calendar date. The zero Date is not valid.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Parse reads YYYY-MM-DD.
func Parse(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		// A date of the right shape that does not exist says why (time's
		// "month out of range", "day out of range").
		var pe *time.ParseError
		if errors.As(err, &pe) && strings.HasPrefix(pe.Message, ": ") {
			return Date{}, fmt.Errorf("date %q: %s", s, strings.TrimPrefix(pe.Message, ": "))
		}
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf is the date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// String prints YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// UTCMidnight is the instant the date starts in UTC, for arithmetic.
func (d Date) UTCMidnight() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays is d moved by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.UTCMidnight().AddDate(0, 0, n)) }

// Compare is -1, 0 or +1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int { return d.UTCMidnight().Compare(o.UTCMidnight()) }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Days is the number of days since 1970-01-01 (negative before it).
func (d Date) Days() int64 { return floorDiv(d.UTCMidnight().Unix(), 86400) }

// FromDays is the date n days after 1970-01-01.
func FromDays(n int64) Date { return DateOf(time.Unix(n*86400, 0).UTC()) }

// MarshalText writes YYYY-MM-DD, so dates are JSON strings and map keys.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Window is an inclusive range of dates.
type Window struct {
	Start Date `json:"start"`
	End   Date `json:"end"`
}

// ParseWindow reads a start and an end date; an empty end is the start.
func ParseWindow(start, end string) (Window, error) {
	s, err := Parse(start)
	if err != nil {
		return Window{}, fmt.Errorf("start: %w", err)
	}
	e := s
	if end != "" {
		if e, err = Parse(end); err != nil {
			return Window{}, fmt.Errorf("end: %w", err)
		}
	}
	w := Window{s, e}
	return w, w.Validate()
}

// Validate checks that both ends are set and in order.
func (w Window) Validate() error {
	if w.Start.IsZero() || w.End.IsZero() {
		return errors.New("window: start and end are required")
	}
	if w.End.Before(w.Start) {
		return fmt.Errorf("window: end %s is before start %s", w.End, w.Start)
	}
	return nil
}

// Dates lists every date of the window in order.
func (w Window) Dates() []Date {
	var out []Date
	for d := w.Start; !w.End.Before(d); d = d.AddDays(1) {
		out = append(out, d)
	}
	return out
}

// Contains reports whether d is inside the window.
func (w Window) Contains(d Date) bool { return !d.Before(w.Start) && !w.End.Before(d) }

// Overlaps reports whether the two windows share a date.
func (w Window) Overlaps(o Window) bool { return !o.End.Before(w.Start) && !w.End.Before(o.Start) }

// String prints start..end.
func (w Window) String() string { return w.Start.String() + ".." + w.End.String() }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// LoadZone loads an IANA time zone by name. time.LoadLocation takes a path
// below the zoneinfo root, so a name like "Pacific" (a folder there) fails
// with "is a directory"; the error here says what is expected instead.
func LoadZone(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%q is not an IANA time zone name (such as America/Los_Angeles or UTC)", name)
	}
	return loc, nil
}
