package transform

// The job's expressions: where (a filter), derive (computed columns) and
// rename, in CEL (cel.dev/cel-go, the expression language of Kubernetes
// admission policies and Google's IAM conditions: typed, side-effect free,
// and evaluated in microseconds without a sandbox).
//
// An expression reads the event's fields by their output column names,
// before rename (context_device_model, properties_revenue), and the event's
// instant as `timestamp` and `<timestamp>_utc` (CEL timestamps). A field
// the event lacks, or holds null, reads as null. Numbers mix as in SQL:
// 19.99 * 100 is a double, whichever side is an integer. An expression that
// fails on a row where a field it reads is null gives null (derive) or does
// not keep the row (where), as SQL's null does; any other failure
// quarantines the line (ReasonExpressionError).

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/env"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// ReasonExpressionError quarantines a line whose where or derive
// expression failed (see Exprs).
const ReasonExpressionError = "expression_error"

// Derive is one computed column: its name, its CEL expression and,
// optionally, its type (string, boolean, bigint or double; long and int
// are bigint, bool is boolean, float is double). Without a type the column
// takes the type of its values, as a source field does.
type Derive struct {
	Name       string `yaml:"name"`
	Expression string `yaml:"expression"`
	Type       string `yaml:"type,omitempty"`
}

// derivePrefix starts the source path of a derived column's values: a
// byte no flattened Segment field starts with (JSON needs \u0000 to write
// it), so a derived column has a path like any column and the column plan,
// the schema and the reduce need nothing of their own for it.
const derivePrefix = "\x00"

// DerivedPath is the source path of derived column name's values.
func DerivedPath(name string) string { return derivePrefix + name }

// IsDerivedPath reports whether a source path is a derived column's, and
// its name.
func IsDerivedPath(path string) (string, bool) { return strings.CutPrefix(path, derivePrefix) }

// ColumnNameOf is the name a source path's column has before renames and
// collisions: the flattened, snake_cased path, or a derived column's name.
func ColumnNameOf(path string) string {
	if n, ok := IsDerivedPath(path); ok {
		return n
	}
	return columnName(path)
}

// TargetName is the name the spec gives the column of a source path, when
// it gives one: a derived column's name, or the rename of the path's
// column name.
func (s Spec) TargetName(path string) (string, bool) {
	if n, ok := IsDerivedPath(path); ok {
		return n, true
	}
	if len(s.Rename) == 0 {
		return "", false
	}
	to, ok := s.Rename[columnName(path)]
	return to, ok
}

// NamedColumns are the names the spec claims: derived columns and rename
// targets. No other source field takes one of them (it gets a suffix, as
// in a collision).
func (s Spec) NamedColumns() []string {
	var out []string
	for _, d := range s.Derive {
		out = append(out, d.Name)
	}
	for _, to := range s.Rename {
		out = append(out, to)
	}
	slices.Sort(out)
	return out
}

// DeriveType is the declared type of a derived column.
func DeriveType(name string) (ColumnType, bool) {
	switch strings.ToLower(name) {
	case "string":
		return TypeString, true
	case "boolean", "bool":
		return TypeBool, true
	case "bigint", "long", "int", "integer":
		return TypeBigint, true
	case "double", "float":
		return TypeDouble, true
	}
	return 0, false
}

// PinnedType is the type the spec fixes for a source path: a pin
// (Spec.Columns) or a derived column's declared type.
func (s Spec) PinnedType(path string) (ColumnType, bool) {
	if t, ok := s.Columns[path]; ok {
		return t, true
	}
	if n, ok := IsDerivedPath(path); ok {
		for _, d := range s.Derive {
			if d.Name == n && d.Type != "" {
				return DeriveType(d.Type)
			}
		}
	}
	return 0, false
}

// ExprError is a problem with one field of the expressions' part of the
// spec (where, derive, rename), named by its YAML path.
type ExprError struct {
	Field string // e.g. "where", "derive[1].expression", "rename.context_os_name"
	Err   error
}

func (e *ExprError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ExprError) Unwrap() error { return e.Err }

var columnNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ExprProblems lists every problem of where, derive and rename: an
// expression that does not compile, a bad or duplicate name, an unknown
// type. Empty when the spec's expressions are fine.
func (s Spec) ExprProblems() []error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, &ExprError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	local, utc := TimestampColumns(s)
	names := map[string]string{} // a claimed name -> the field that claims it
	claim := func(field, name string) {
		switch {
		case !columnNamePattern.MatchString(name):
			bad(field, "%q is not a column name (lower-case letters, digits and _, not starting with a digit)", name)
		case name == local || name == utc:
			bad(field, "%s is a generated timestamp column", name)
		case names[name] != "":
			bad(field, "%s is also named by %s", name, names[name])
		default:
			names[name] = field
		}
	}
	if strings.TrimSpace(s.Where) != "" {
		if _, err := compileExpr(s.Where); err != nil {
			bad("where", "%v", err)
		}
	}
	for i, d := range s.Derive {
		field := fmt.Sprintf("derive[%d]", i)
		claim(field+".name", d.Name)
		if strings.TrimSpace(d.Expression) == "" {
			bad(field+".expression", "is required")
		} else if _, err := compileExpr(d.Expression); err != nil {
			bad(field+".expression", "%v", err)
		}
		if _, ok := DeriveType(d.Type); d.Type != "" && !ok {
			bad(field+".type", "%q is not string, boolean, bigint (long) or double", d.Type)
		}
	}
	derived := map[string]bool{}
	for _, d := range s.Derive {
		derived[d.Name] = true
	}
	for _, from := range slices.Sorted(maps.Keys(s.Rename)) {
		field := "rename." + from
		to := s.Rename[from]
		switch {
		case from == local || from == utc:
			bad(field, "the timestamp columns are named after timestamp_field, and cannot be renamed")
		case derived[from]:
			bad(field, "%s is a derived column: give it the name you want in derive", from)
		case from == to:
			bad(field, "renames %s to itself", from)
		case !columnNamePattern.MatchString(from):
			bad(field, "%q is not an output column name (as the flattener makes them: context_device_model)", from)
		default:
			claim(field, to)
		}
	}
	return errs
}

// typeIdents are CEL's type names: an identifier among them is the type,
// not a column, unless a column of that name exists (type is one in
// Segment events, and stays a column).
var typeIdents = []string{"bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "uint"}

// ExprColumns are the column names an expression reads. It fails when
// the expression does not parse.
func ExprColumns(src string) ([]string, error) {
	a, iss := baseEnv().Parse(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	return freeIdents(a), nil
}

// freeIdents are the identifiers of an expression that no comprehension
// (all, exists, map, filter) binds, less CEL's type names.
func freeIdents(a *cel.Ast) []string {
	var ids, bound []string
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			ids = append(ids, e.AsIdent())
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			bound = append(bound, c.IterVar(), c.IterVar2(), c.AccuVar())
		}
	}))
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(bound, id) || slices.Contains(typeIdents, id) })
}

var baseEnvOnce = sync.OnceValues(numbersEnv)

// baseEnv is the CEL environment without variables: the standard library,
// the strings and math extensions, and numbers that mix.
func baseEnv() *cel.Env {
	env, err := baseEnvOnce()
	if err != nil {
		panic(fmt.Sprintf("the CEL environment: %v", err)) // a bug: the options are fixed
	}
	return env
}

// compiledExpr is one expression, checked with every identifier it reads
// declared dyn (a field's JSON type can change from row to row).
type compiledExpr struct {
	src  string
	ast  *cel.Ast
	vars []string
}

func compileExpr(src string) (*compiledExpr, error) {
	a, iss := baseEnv().Parse(src)
	if iss.Err() != nil {
		return nil, errors.New(cleanIssues(iss.Err()))
	}
	vars := freeIdents(a)
	opts := make([]cel.EnvOption, 0, len(vars))
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	env, err := baseEnv().Extend(opts...)
	if err != nil {
		return nil, err
	}
	checked, iss := env.Check(a)
	if iss.Err() != nil {
		return nil, errors.New(cleanIssues(iss.Err()))
	}
	return &compiledExpr{src: src, ast: checked, vars: vars}, nil
}

// cleanIssues makes CEL's multi-line error text one readable message.
// CEL's position (line:column within the expression) stays; its drawing
// of the expression with a caret goes.
func cleanIssues(err error) string {
	var msgs []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "|") || line == "" {
			continue
		}
		msgs = append(msgs, "at "+strings.TrimPrefix(line, "ERROR: <input>:"))
	}
	return strings.Join(msgs, "; ")
}

// numbersEnv is CEL's standard library, the strings and math extensions,
// and arithmetic as in SQL: int and double meet (CEL has no implicit
// conversion, so 19.99 * 100 would otherwise fail) and null in gives null
// out. The standard +, -, * and / are replaced by the same operators with
// the mixed overloads added (the standard ones dispatch on the left
// operand's type alone).
func numbersEnv() (*cel.Env, error) {
	subset := env.NewLibrarySubset()
	ops := []string{operators.Add, operators.Subtract, operators.Multiply, operators.Divide}
	for _, op := range ops {
		subset.AddExcludedFunctions(env.NewFunction(op))
	}
	opts := []cel.EnvOption{cel.StdLib(cel.StdLibSubset(subset)), cel.EagerlyValidateDeclarations(true), ext.Strings(), ext.Math()}
	A := cel.TypeParamType("A")
	o := func(id string, args []*cel.Type, result *cel.Type) cel.FunctionOpt {
		return cel.Overload(id, args, result)
	}
	t2 := func(a, b *cel.Type) []*cel.Type { return []*cel.Type{a, b} }
	I, D, U := cel.IntType, cel.DoubleType, cel.UintType
	mixed := func(name string) []cel.FunctionOpt {
		id := "sluice_" + strings.Trim(name, "_")
		return []cel.FunctionOpt{o(id+"_int_double", t2(I, D), D), o(id+"_double_int", t2(D, I), D)}
	}
	// binding is the operator's one implementation: null in, null out (as
	// in SQL, and without the cost of an error on every row that lacks a
	// field), int and double meet as doubles, the rest as CEL does it.
	binding := func(fn func(a, b float64) float64, std func(l, r ref.Val) ref.Val, trait int) cel.FunctionOpt {
		return cel.SingletonBinaryBinding(func(l, r ref.Val) ref.Val {
			switch a := l.(type) {
			case types.Null:
				return types.NullValue
			case types.Int:
				if b, ok := r.(types.Double); ok {
					return types.Double(fn(float64(a), float64(b)))
				}
			case types.Double:
				if b, ok := r.(types.Int); ok {
					return types.Double(fn(float64(a), float64(b)))
				}
			}
			if r == types.NullValue {
				return types.NullValue
			}
			if !l.Type().HasTrait(trait) {
				return types.NoSuchOverloadErr()
			}
			return std(l, r)
		})
	}
	opts = append(opts,
		cel.Function(operators.Add, append(mixed(operators.Add),
			o(overloads.AddBytes, t2(cel.BytesType, cel.BytesType), cel.BytesType),
			o(overloads.AddDouble, t2(D, D), D),
			o(overloads.AddDurationDuration, t2(cel.DurationType, cel.DurationType), cel.DurationType),
			o(overloads.AddDurationTimestamp, t2(cel.DurationType, cel.TimestampType), cel.TimestampType),
			o(overloads.AddTimestampDuration, t2(cel.TimestampType, cel.DurationType), cel.TimestampType),
			o(overloads.AddInt64, t2(I, I), I),
			o(overloads.AddList, t2(cel.ListType(A), cel.ListType(A)), cel.ListType(A)),
			o(overloads.AddString, t2(cel.StringType, cel.StringType), cel.StringType),
			o(overloads.AddUint64, t2(U, U), U),
			binding(func(a, b float64) float64 { return a + b }, func(l, r ref.Val) ref.Val { return l.(traits.Adder).Add(r) }, traits.AdderType))...),
		cel.Function(operators.Subtract, append(mixed(operators.Subtract),
			o(overloads.SubtractDouble, t2(D, D), D),
			o(overloads.SubtractDurationDuration, t2(cel.DurationType, cel.DurationType), cel.DurationType),
			o(overloads.SubtractInt64, t2(I, I), I),
			o(overloads.SubtractTimestampDuration, t2(cel.TimestampType, cel.DurationType), cel.TimestampType),
			o(overloads.SubtractTimestampTimestamp, t2(cel.TimestampType, cel.TimestampType), cel.DurationType),
			o(overloads.SubtractUint64, t2(U, U), U),
			binding(func(a, b float64) float64 { return a - b }, func(l, r ref.Val) ref.Val { return l.(traits.Subtractor).Subtract(r) }, traits.SubtractorType))...),
		cel.Function(operators.Multiply, append(mixed(operators.Multiply),
			o(overloads.MultiplyDouble, t2(D, D), D),
			o(overloads.MultiplyInt64, t2(I, I), I),
			o(overloads.MultiplyUint64, t2(U, U), U),
			binding(func(a, b float64) float64 { return a * b }, func(l, r ref.Val) ref.Val { return l.(traits.Multiplier).Multiply(r) }, traits.MultiplierType))...),
		cel.Function(operators.Divide, append(mixed(operators.Divide),
			o(overloads.DivideDouble, t2(D, D), D),
			o(overloads.DivideInt64, t2(I, I), I),
			o(overloads.DivideUint64, t2(U, U), U),
			binding(func(a, b float64) float64 { return a / b }, func(l, r ref.Val) ref.Val { return l.(traits.Divider).Divide(r) }, traits.DividerType))...),
	)
	return cel.NewCustomEnv(opts...)
}
