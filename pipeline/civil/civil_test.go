package civil

import (
	"strings"
	"testing"
)

// A date of the right form that names no day says why, not "want
// YYYY-MM-DD" (which it is).
func TestParseSaysWhatIsWrong(t *testing.T) {
	for s, want := range map[string]string{
		"2026-02-30": "February 2026 has days 1 to 28",
		"2024-02-30": "February 2024 has days 1 to 29",
		"2026-13-01": "there is no month 13",
		"2026-13-45": "there is no month 13",
		"30/10/2026": "want YYYY-MM-DD",
		"2026-00-10": "there is no month 0",
		"2026-1-01":  "want YYYY-MM-DD",
		"+026-01-01": "want YYYY-MM-DD",
		"yesterday":  "want YYYY-MM-DD",
	} {
		_, err := Parse(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", s, err, want)
		}
	}
	if d, err := Parse("2024-02-29"); err != nil || d != (Date{2024, 2, 29}) {
		t.Errorf("Parse(2024-02-29) = %v, %v", d, err)
	}
}
