package civil

import (
	"strings"
	"testing"
)

// A date of the right shape that does not exist says what is wrong with
// it, not only the format.
func TestParseSaysWhyADateDoesNotExist(t *testing.T) {
	for in, want := range map[string]string{
		"2026-13-45": "month out of range",
		"2026-02-30": "day out of range",
		"30/10/2026": "want YYYY-MM-DD",
	} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want %q", in, err, want)
		}
	}
	if d, err := Parse("2026-10-30"); err != nil || d.String() != "2026-10-30" {
		t.Errorf("Parse(2026-10-30): %v %v", d, err)
	}
}
