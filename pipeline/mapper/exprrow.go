package mapper

// Evaluating the job's expressions on the rows of a map task (see
// pipeline/expr): the mapper compiles them once, reads only the fields they
// name out of each row's encoded fields, and appends the derived columns
// to the row. A job without expressions never gets here (m.exprs is nil).

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/structpb"

	"sluice/pipeline/column"
	"sluice/pipeline/expr"
	"sluice/pipeline/transform"
)

// Exprs are a job's where and derive expressions, compiled once for a
// task.
type Exprs struct {
	where  *exprProgram
	derive []derivedProgram
	// slots numbers the column names the expressions read.
	slots          map[string]int
	names          []string
	tsLocal, tsUTC int // slots of the timestamp columns, -1 when unread
}

type exprProgram struct {
	field string // how messages name it: "where", "derive is_purchase"
	prg   cel.Program
	reads []int // slots
}

type derivedProgram struct {
	exprProgram
	name string
	typ  column.Type // noPin: the values' own
}

// CompileExprs compiles the spec's where and derive expressions; nil when
// it has none.
func CompileExprs(spec transform.Spec) (*Exprs, error) {
	if strings.TrimSpace(spec.Where) == "" && len(spec.Derive) == 0 {
		return nil, nil
	}
	x := &Exprs{slots: map[string]int{}, tsLocal: -1, tsUTC: -1}
	compile := func(field, src string) (exprProgram, error) {
		c, err := expr.Compile(src)
		if err != nil {
			return exprProgram{}, fmt.Errorf("%s: %w", field, err)
		}
		env, err := expr.Env().Extend(declare(c.Vars)...)
		if err != nil {
			return exprProgram{}, fmt.Errorf("%s: %w", field, err)
		}
		prg, err := env.Program(c.AST, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return exprProgram{}, fmt.Errorf("%s: %w", field, err)
		}
		p := exprProgram{field: field, prg: prg}
		for _, v := range c.Vars {
			i, ok := x.slots[v]
			if !ok {
				i = len(x.names)
				x.slots[v] = i
				x.names = append(x.names, v)
			}
			p.reads = append(p.reads, i)
		}
		return p, nil
	}
	if strings.TrimSpace(spec.Where) != "" {
		p, err := compile("where", spec.Where)
		if err != nil {
			return nil, err
		}
		x.where = &p
	}
	for _, d := range spec.Derive {
		p, err := compile("derive "+d.Name, d.Expression)
		if err != nil {
			return nil, err
		}
		dp := derivedProgram{exprProgram: p, name: d.Name, typ: noPin}
		if d.Type != "" {
			t, ok := column.ParseType(d.Type)
			if !ok {
				return nil, fmt.Errorf("derive %s: type %q is not string, boolean, bigint or double", d.Name, d.Type)
			}
			dp.typ = t
		}
		x.derive = append(x.derive, dp)
	}
	local, utc := spec.TimestampColumns()
	if i, ok := x.slots[local]; ok {
		x.tsLocal = i
	}
	if i, ok := x.slots[utc]; ok {
		x.tsUTC = i
	}
	return x, nil
}

func declare(vars []string) []cel.EnvOption {
	opts := make([]cel.EnvOption, 0, len(vars))
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	return opts
}

// FilteredLine is a line the job's where left out, for Options.Filtered.
// Raw is valid during the call only.
type FilteredLine struct {
	Source, Key string
	Line        int64
	Raw         []byte
}

// rowExprs is a mapper's evaluation state.
type rowExprs struct {
	*Exprs
	// colSlot maps a shard column id to the slot its values fill, -1 for
	// none, unresolved for a column not looked at yet.
	colSlot   []int32
	slotPaths []string // the source path whose values fill each slot
	vals      []ref.Val
	cells     []valueCells // by slot
	act       rowActivation
}

// valueCells are a slot's values boxed once: a ref.Val of each kind whose
// boxed value the row's value is written into, so that giving a row's
// fields to CEL allocates nothing (a string, double or large int put in
// an interface is otherwise a heap allocation per field and row, and the
// garbage collector's work after it). The values live while the row's
// expressions run, as the row does.
type valueCells struct {
	str *types.String
	dbl *types.Double
	num *types.Int
	// strVal, dblVal and numVal box str, dbl and num.
	strVal, dblVal, numVal ref.Val
}

func newValueCells() valueCells {
	c := valueCells{str: new(types.String), dbl: new(types.Double), num: new(types.Int)}
	c.strVal, c.dblVal, c.numVal = boxAt(types.String(""), unsafe.Pointer(c.str)), boxAt(types.Double(0), unsafe.Pointer(c.dbl)), boxAt(types.Int(0), unsafe.Pointer(c.num))
	return c
}

// boxAt is v as a ref.Val whose boxed value is the one at p (of v's
// type): an interface is a type word and a pointer to its value.
func boxAt(v ref.Val, p unsafe.Pointer) ref.Val {
	(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] = p
	return v
}

const unresolved = -2

// rowActivation resolves the expressions' names to the row's values.
type rowActivation struct{ x *rowExprs }

func (a rowActivation) ResolveName(name string) (any, bool) {
	for i, n := range a.x.names { // a few names: cheaper than the map
		if n == name {
			return a.x.vals[i], true
		}
	}
	return nil, false
}

func (a rowActivation) Parent() interpreter.Activation { return nil }

// initExprs compiles the spec's expressions for the mapper and gives each
// derived column the first column ids, before any field has one.
func (m *mapper) initExprs() error {
	x, err := CompileExprs(m.spec)
	if err != nil || x == nil {
		return err
	}
	r := &rowExprs{Exprs: x, vals: make([]ref.Val, len(x.names)), slotPaths: make([]string, len(x.names)), cells: make([]valueCells, len(x.names))}
	for i := range r.cells {
		r.cells[i] = newValueCells()
	}
	r.act = rowActivation{r}
	for _, d := range x.derive {
		p := column.DerivedPath(d.name)
		m.colIDs[p] = uint32(len(m.colPaths))
		m.colPaths = append(m.colPaths, p)
		m.pins = append(m.pins, noPin)
	}
	m.exprs = r
	return nil
}

// evalExprs runs where and derive on the row in m.fields, appending the
// derived columns to it. keep is false when the row is filtered out
// (counted) or quarantined.
func (m *mapper) evalExprs(lineNo int64, raw []byte, us int64) (keep bool, err error) {
	x := m.exprs
	if bad := m.exprValues(); bad != "" {
		return false, m.quarantineLine(lineNo, ReasonExpressionError, bad, raw)
	}
	if x.tsLocal >= 0 || x.tsUTC >= 0 {
		ts := types.Timestamp{Time: time.UnixMicro(us).UTC()}
		for _, i := range []int{x.tsLocal, x.tsUTC} {
			if i >= 0 {
				x.vals[i] = ts
			}
		}
	}
	if w := x.where; w != nil {
		v, _, err := w.prg.Eval(x.act)
		switch {
		case err != nil && !x.readsNull(w):
			return false, m.quarantineLine(lineNo, ReasonExpressionError, w.field+": "+err.Error(), raw)
		case err == nil && v.Type() != types.BoolType && v != types.NullValue:
			return false, m.quarantineLine(lineNo, ReasonExpressionError, fmt.Sprintf("where: gave a %s, not a boolean", v.Type().TypeName()), raw)
		case err != nil || v != types.True:
			m.stats.FilteredOut++
			if m.opts.Filtered != nil {
				m.opts.Filtered(FilteredLine{Source: m.curSource, Key: m.curKey, Line: lineNo, Raw: raw})
			}
			return false, nil
		}
	}
	for i := range x.derive {
		d := &x.derive[i]
		v, _, err := d.prg.Eval(x.act)
		if err != nil {
			if !x.readsNull(&d.exprProgram) {
				return false, m.quarantineLine(lineNo, ReasonExpressionError, d.field+": "+err.Error(), raw)
			}
			v = types.NullValue
		}
		if m.fields, err = m.appendDerived(m.fields, uint32(i), v, d.typ); err != nil {
			return false, m.quarantineLine(lineNo, ReasonExpressionError, d.field+": "+err.Error(), raw)
		}
	}
	return true, nil
}

// readsNull reports whether a field the expression reads is null in the
// row.
func (x *rowExprs) readsNull(p *exprProgram) bool {
	for _, i := range p.reads {
		if x.vals[i] == types.NullValue {
			return true
		}
	}
	return false
}

// exprValues fills the slots from the row's fields: null unless the row
// has the field. It returns a quarantine detail for a field that claims a
// derived column's reserved path.
func (m *mapper) exprValues() string {
	x := m.exprs
	for i := range x.vals {
		x.vals[i] = types.NullValue
	}
	// The fields as the flattener encoded them (intermediate.Fields reads
	// the same format): a uvarint
	// column id, a kind byte and the payload. Read inline: this runs for
	// every field of every row.
	b := m.fields
	i := 0
	for range m.nfields {
		var id uint64
		if c := b[i]; c < 0x80 {
			id = uint64(c)
			i++
		} else {
			v, n := binary.Uvarint(b[i:])
			id, i = v, i+n
		}
		kind := b[i]
		i++
		for int(id) >= len(x.colSlot) { // a column new to the shard
			x.colSlot = append(x.colSlot, unresolved)
		}
		if int(id) < len(x.derive) {
			return fmt.Sprintf("the field %q has the reserved name of derived column %s", m.colPaths[id], x.derive[id].name)
		}
		s := x.colSlot[id]
		if s == unresolved {
			s = m.resolveSlot(uint32(id))
		}
		switch kind {
		case kindNull:
			if s >= 0 {
				x.vals[s] = types.NullValue
			}
		case kindBool:
			if s >= 0 {
				x.vals[s] = types.Bool(b[i] != 0)
			}
			i++
		case kindInt:
			if s >= 0 {
				v, _ := binary.Varint(b[i:])
				*x.cells[s].num = types.Int(v)
				x.vals[s] = x.cells[s].numVal
			}
			for b[i]&0x80 != 0 {
				i++
			}
			i++
		case kindDouble:
			if s >= 0 {
				*x.cells[s].dbl = types.Double(math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
				x.vals[s] = x.cells[s].dblVal
			}
			i += 8
		case kindString:
			var n uint64
			if c := b[i]; c < 0x80 {
				n = uint64(c)
				i++
			} else {
				v, k := binary.Uvarint(b[i:])
				n, i = v, i+k
			}
			if s >= 0 {
				// The row's bytes, not a copy (see valueCells).
				*x.cells[s].str = types.String(unsafe.String(unsafe.SliceData(b[i:]), int(n)))
				x.vals[s] = x.cells[s].strVal
			}
			i += int(n)
		}
	}
	return ""
}

// resolveSlot finds the slot of column id: its name's, when an
// expression reads it. When two source paths have one name, the path
// that sorts first fills the slot, as it would keep the name in the
// column plan (ResolveNames).
func (m *mapper) resolveSlot(id uint32) int32 {
	x := m.exprs
	path := m.colPaths[id]
	s, ok := x.slots[column.NameOf(path)]
	if !ok || int(id) < len(x.derive) {
		x.colSlot[id] = -1
		return -1
	}
	if other := x.slotPaths[s]; other != "" && other < path {
		x.colSlot[id] = -1
		return -1
	} else if other != "" {
		for j, p := range m.colPaths[:min(len(m.colPaths), len(x.colSlot))] {
			if p == other {
				x.colSlot[j] = -1
			}
		}
	}
	x.slotPaths[s] = path
	x.colSlot[id] = int32(s)
	return int32(s)
}

// appendDerived appends derived column i's value v as a field, converted
// to typ unless typ is noPin.
func (m *mapper) appendDerived(fields []byte, i uint32, v ref.Val, typ column.Type) ([]byte, error) {
	kind, err := derivedKind(v, typ)
	if err != nil {
		return fields, err
	}
	fields = binary.AppendUvarint(fields, uint64(i))
	fields = append(fields, kind)
	switch kind {
	case kindBool:
		b := byte(0)
		if v == types.True {
			b = 1
		}
		fields = append(fields, b)
	case kindInt:
		n, _ := toInt(v)
		fields = binary.AppendVarint(fields, n)
	case kindDouble:
		f, _ := toDouble(v)
		fields = binary.LittleEndian.AppendUint64(fields, math.Float64bits(f))
	case kindString:
		s, err := toText(v)
		if err != nil {
			return fields, err
		}
		fields = binary.AppendUvarint(fields, uint64(len(s)))
		fields = append(fields, s...)
	}
	m.rowCols = append(m.rowCols, i, uint32(kind))
	m.nfields++
	return fields, nil
}

// derivedKind is the field kind a derived value is stored as: its own
// (lists, maps, timestamps and the like as text), or typ's when the value
// converts to it exactly (a double to bigint is rounded, as Athena's
// CAST does).
func derivedKind(v ref.Val, typ column.Type) (byte, error) {
	if v == types.NullValue {
		return kindNull, nil
	}
	if types.IsError(v) || types.IsUnknown(v) {
		return 0, fmt.Errorf("%v", v)
	}
	switch typ {
	case noPin:
		switch v.Type() {
		case types.BoolType:
			return kindBool, nil
		case types.IntType:
			return kindInt, nil
		case types.UintType:
			if _, ok := toInt(v); ok {
				return kindInt, nil
			}
			return kindDouble, nil
		case types.DoubleType:
			return kindDouble, nil
		}
		return kindString, nil
	case column.TypeString:
		return kindString, nil
	case column.TypeBool:
		if v.Type() == types.BoolType {
			return kindBool, nil
		}
	case column.TypeBigint:
		if _, ok := toInt(v); ok {
			return kindInt, nil
		}
	case column.TypeDouble:
		if _, ok := toDouble(v); ok {
			return kindDouble, nil
		}
	}
	return 0, fmt.Errorf("gave %s, which is not a %s", describe(v), typ)
}

func describe(v ref.Val) string {
	s, err := toText(v)
	if err != nil || len(s) > 40 {
		return "a " + v.Type().TypeName()
	}
	return fmt.Sprintf("a %s (%s)", v.Type().TypeName(), s)
}

// toInt converts an integer, or a finite double rounded, to int64.
func toInt(v ref.Val) (int64, bool) {
	switch n := v.(type) {
	case types.Int:
		return int64(n), true
	case types.Uint:
		return int64(n), n <= math.MaxInt64
	case types.Double:
		r := math.Round(float64(n))
		if math.IsNaN(r) || r < -(1<<63) || r >= 1<<63 {
			return 0, false
		}
		return int64(r), true
	}
	return 0, false
}

// toDouble converts a number a double holds exactly.
func toDouble(v ref.Val) (float64, bool) {
	switch n := v.(type) {
	case types.Double:
		return float64(n), true
	case types.Int:
		return float64(n), n <= maxExactDouble && n >= -maxExactDouble
	case types.Uint:
		return float64(n), n <= maxExactDouble
	}
	return 0, false
}

// toText is a value as column text: strings as they are, numbers and
// booleans as JSON writes them, timestamps in RFC 3339, lists and maps as
// JSON.
func toText(v ref.Val) (string, error) {
	switch t := v.(type) {
	case types.String:
		return string(t), nil
	case types.Bool:
		return strconv.FormatBool(bool(t)), nil
	case types.Int:
		return strconv.FormatInt(int64(t), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(t), 10), nil
	case types.Double:
		return strconv.FormatFloat(float64(t), 'g', -1, 64), nil
	case types.Timestamp:
		return t.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return t.Duration.String(), nil
	case types.Bytes:
		return string(repairUTF8(nil, t)), nil
	}
	native, err := v.ConvertToNative(reflect.TypeFor[*structpb.Value]())
	if err != nil {
		return "", fmt.Errorf("a %s cannot be a column value", v.Type().TypeName())
	}
	b, err := json.Marshal(native.(*structpb.Value).AsInterface())
	return string(b), err
}
