package workflow

import (
	"fmt"
	"time"
)

// Date is a civil date (no time zone); its zero value is invalid.
type Date struct{ Year, Month, Day int }

// DateOf is the civil date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, int(m), d}
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// String prints YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Time is midnight UTC of d, useful for arithmetic.
func (d Date) Time() time.Time {
	return time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
}

// AddDays moves d by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.Time().Before(o.Time()) }

// Window is an inclusive range of civil dates a run covers.
type Window struct{ Start, End Date }

// ParseWindow reads a start and an end date; end defaults to start.
func ParseWindow(start, end string) (Window, error) {
	s, err := ParseDate(start)
	if err != nil {
		return Window{}, fmt.Errorf("start: %w", err)
	}
	e := s
	if end != "" {
		if e, err = ParseDate(end); err != nil {
			return Window{}, fmt.Errorf("end: %w", err)
		}
	}
	if e.Before(s) {
		return Window{}, fmt.Errorf("end %s is before start %s", e, s)
	}
	return Window{s, e}, nil
}

// Dates lists every date of the window in order.
func (w Window) Dates() []Date {
	var out []Date
	for d := w.Start; !w.End.Before(d); d = d.AddDays(1) {
		out = append(out, d)
	}
	return out
}

func (w Window) String() string { return w.Start.String() + ".." + w.End.String() }
