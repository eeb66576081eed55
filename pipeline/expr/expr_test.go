package expr

import (
	"slices"
	"strings"
	"testing"
)

// Every problem of where, derive and rename is reported, each naming its
// field.
func TestExprProblems(t *testing.T) {
	where := `type == `
	derive := []Derive{
		{Name: "is_purchase", Expression: `event == "Order Completed"`},
		{Name: "Bad-Name", Expression: `1`},
		{Name: "x", Expression: `nosuchfn(event)`, Type: "decimal"},
		{Name: "is_purchase", Expression: `true`},
	}
	rename := map[string]string{"timestamp": "ts", "is_purchase": "p", "context_os_name": "x"}
	var got []string
	for _, e := range Check(where, derive, rename, "timestamp", "timestamp_utc") {
		got = append(got, e.Error())
	}
	for _, want := range []string{"where: ", "derive[1].name: \"Bad-Name\"", "derive[2].expression: ", "nosuchfn", "derive[2].type: \"decimal\"",
		"derive[3].name: is_purchase is also named by derive[0].name", "rename.timestamp: ", "rename.is_purchase: is_purchase is a derived column",
		"rename.context_os_name: x is also named by derive[2].name"} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, want) }) {
			t.Errorf("no problem %q among\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// Columns are found through
// comprehensions; CEL's type names are not columns, but type is.
func TestExprNumbersAndColumns(t *testing.T) {
	for _, c := range []struct {
		src  string
		cols []string
	}{
		{`properties_revenue * 100 > 5 && type == "track"`, []string{"properties_revenue", "type"}},
		{`[1, 2].exists(x, x == properties_quantity)`, []string{"properties_quantity"}},
		{`string(properties_price) + "$"`, []string{"properties_price"}},
		{`timestamp.getHours("America/Los_Angeles") >= 9`, []string{"timestamp"}},
	} {
		cols, err := Columns(c.src)
		if err != nil || !slices.Equal(cols, c.cols) {
			t.Errorf("%s: columns %v, %v; want %v", c.src, cols, err, c.cols)
		}
		if _, err := Compile(c.src); err != nil {
			t.Errorf("%s: %v", c.src, err)
		}
	}
}
