// Package expr is the job's expressions: where (a filter), derive (computed columns) and
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
// quarantines the line (see pipeline/mapper).
//
// The package compiles and checks expressions; the map evaluates them
// on its rows (pipeline/mapper).
package expr

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

	"sluice/pipeline/column"
)

// Derive is one computed column: its name, its CEL expression and,
// optionally, its type (string, boolean, bigint or double; long and int
// are bigint, bool is boolean, float is double). Without a type the column
// takes the type of its values, as a source field does.
type Derive struct {
	Name       string `yaml:"name"`
	Expression string `yaml:"expression"`
	Type       string `yaml:"type,omitempty"`
}

// Error is a problem with one field of the expressions' part of the
// spec (where, derive, rename), named by its YAML path.
type Error struct {
	Field string // e.g. "where", "derive[1].expression", "rename.context_os_name"
	Err   error
}

func (e *Error) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

var columnNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Check lists every problem of a job's where, derive and rename: an
// expression that does not compile, a bad or duplicate name, an unknown
// type. local and utc are the generated timestamp columns, which nothing
// may claim. Empty when the expressions are fine.
func Check(where string, derive []Derive, rename map[string]string, local, utc string) []error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, &Error{Field: field, Err: fmt.Errorf(format, args...)})
	}
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
	if strings.TrimSpace(where) != "" {
		if _, err := Compile(where); err != nil {
			bad("where", "%v", err)
		}
	}
	for i, d := range derive {
		field := fmt.Sprintf("derive[%d]", i)
		claim(field+".name", d.Name)
		if strings.TrimSpace(d.Expression) == "" {
			bad(field+".expression", "is required")
		} else if _, err := Compile(d.Expression); err != nil {
			bad(field+".expression", "%v", err)
		}
		if _, ok := column.ParseType(d.Type); d.Type != "" && !ok {
			bad(field+".type", "%q is not string, boolean, bigint (long) or double", d.Type)
		}
	}
	derived := map[string]bool{}
	for _, d := range derive {
		derived[d.Name] = true
	}
	for _, from := range slices.Sorted(maps.Keys(rename)) {
		field := "rename." + from
		to := rename[from]
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

// Columns are the column names an expression reads. It fails when
// the expression does not parse.
func Columns(src string) ([]string, error) {
	a, iss := Env().Parse(src)
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

// Env is the CEL environment without variables: the standard library,
// the strings and math extensions, and numbers that mix.
func Env() *cel.Env {
	env, err := baseEnvOnce()
	if err != nil {
		panic(fmt.Sprintf("the CEL environment: %v", err)) // a bug: the options are fixed
	}
	return env
}

// Compiled is one expression, checked with every identifier it reads
// (Vars, the columns) declared dyn: a field's JSON type can change from
// row to row.
type Compiled struct {
	Src  string
	AST  *cel.Ast
	Vars []string
}

// Compile parses and checks an expression; its error is one readable
// line.
func Compile(src string) (*Compiled, error) {
	a, iss := Env().Parse(src)
	if iss.Err() != nil {
		return nil, errors.New(cleanIssues(iss.Err()))
	}
	vars := freeIdents(a)
	opts := make([]cel.EnvOption, 0, len(vars))
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	env, err := Env().Extend(opts...)
	if err != nil {
		return nil, err
	}
	checked, iss := env.Check(a)
	if iss.Err() != nil {
		return nil, errors.New(cleanIssues(iss.Err()))
	}
	return &Compiled{Src: src, AST: checked, Vars: vars}, nil
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
