package mapper

import (
	"testing"

	"sluice/pipeline/expr"
	"sluice/pipeline/transform"
)

// int and double mix in arithmetic, as in SQL.
func TestExprNumbers(t *testing.T) {
	spec := transform.DefaultSpec()
	spec.Derive = []expr.Derive{{Name: "a", Expression: `2.5 * 100 + 1 - 0.5 / 2`}, {Name: "b", Expression: `7 / 2`}}
	x, err := CompileExprs(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []any{250.75, int64(3)} {
		v, _, err := x.derive[i].prg.Eval(map[string]any{})
		if err != nil || v.Value() != want {
			t.Errorf("derive %d: %v, %v; want %v", i, v, err, want)
		}
	}
}
