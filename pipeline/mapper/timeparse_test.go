package mapper

import (
	"testing"
	"time"
)

func TestParseTimestampMatchesTimeParse(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"2026-11-01T08:30:00Z",
		"2026-11-01T08:30:00.123Z",
		"2026-11-01T08:30:00.123456789Z",
		"2026-11-01T08:30:00.1234567891Z",
		"2026-11-01T17:30:00+09:00",
		"2026-11-01T01:30:00.5-07:00",
		"2024-02-29T23:59:59-00:00",
		"1969-12-31T23:59:59.999999Z",
		"2023-02-29T00:00:00Z", // no such day
		"2026-13-01T00:00:00Z",
		"2026-11-01 08:30:00Z",
		"2026-11-01T08:30:00",
		"2026-11-01T08:30:00+0900",
		"2026-11-01T08:30:00+24:00",
		"2026-11-01T24:00:00Z",
		"2026-11-01T08:30:60Z",
		"2026-11-01T08:30:00,5Z",
		"2026-11-01T08:30:00.Z",
		"2026-11-01",
		"yesterday",
		"",
	}
	for _, s := range inputs {
		got, ok := parseTimestamp([]byte(s))
		tt, err := time.Parse(time.RFC3339Nano, s)
		if ok != (err == nil) {
			t.Errorf("%q: ok=%v, time.Parse err=%v", s, ok, err)
			continue
		}
		if ok && got != tt.UnixMicro() {
			t.Errorf("%q: %d, want %d", s, got, tt.UnixMicro())
		}
	}
}

func TestZoneCacheDST(t *testing.T) {
	t.Parallel()
	loc, _ := time.LoadLocation("America/Los_Angeles")
	z := newZoneCache(loc)
	for _, s := range []string{
		"2026-11-01T08:59:59Z", "2026-11-01T09:00:00Z", "2026-11-01T08:30:00Z", "2026-03-08T09:59:59Z",
		"2026-03-08T10:00:00Z", "2026-11-01T09:30:00Z", "1900-01-01T00:00:00Z", "2100-07-01T00:00:00Z",
	} {
		tt, _ := time.Parse(time.RFC3339, s)
		_, want := tt.In(loc).Zone()
		if got := z.offset(tt.Unix()); got != int64(want) {
			t.Errorf("%s: offset %d, want %d", s, got, want)
		}
	}
}
