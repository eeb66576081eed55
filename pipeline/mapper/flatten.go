package mapper

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"sluice/pipeline/column"
	"sluice/pipeline/intermediate"
)

// The flattener reads a line of JSON once and produces the flattened fields
// of the record directly, without building a tree. It accepts exactly the
// lines that github.com/valyala/fastjson (the parser it replaced) accepted,
// and gives the same values, so a change of parser changes no output byte:
//
//   - The grammar is fastjson's: whitespace is space, tab, CR and LF;
//     strings end at the first unescaped quote and are not otherwise
//     checked (control bytes, invalid UTF-8 and unknown escapes pass); a
//     number is a run of [0-9.eE+-] or an optionally signed inf/nan in any
//     case (validNumber then rejects the malformed ones as a "bad number",
//     as before); nesting deeper than 300 values is rejected.
//   - Strings and keys are unescaped best-effort as fastjson does: unknown
//     escapes and malformed \u sequences are kept as written, a high
//     surrogate followed by any \uXXXX is decoded with utf16.DecodeRune.
//   - Arrays become their JSON text with the whitespace outside strings
//     removed, everything else as written (fastjson's MarshalTo).
//   - Duplicate keys each produce their field; the dedupe key and the
//     timestamp are looked up as fastjson's Object.Get did (see lookup).
//
// fastjson's tests-only reference copy lives in flatten_ref_test.go, and
// FuzzFlattener compares the two.

// maxJSONDepth is fastjson's MaxDepth: the deepest value nesting accepted.
const maxJSONDepth = 300

// JSON value types of the top-level members the mapper looks up.
const (
	jsonNull byte = iota
	jsonObject
	jsonArray
	jsonString
	jsonNumber
	jsonTrue
	jsonFalse
)

// jsonTypeNames are the type names used in quarantine details (fastjson's
// Type.String).
var jsonTypeNames = [...]string{"null", "object", "array", "string", "number", "true", "false"}

// topValue is a top-level member of the record.
type topValue struct {
	found bool
	typ   byte
	raw   []byte // a string's contents, still escaped
}

// topLookup remembers the candidates for one top-level name: the first
// member whose key as written equals it, and the first whose unescaped key
// does.
type topLookup struct {
	raw, unescaped topValue
}

// flattener holds the per-line state and buffers of one mapper. It
// encodes the fields straight into the mapper's m.fields and m.rowCols.
//
// A line's fields must not give new source paths a column id unless the
// line becomes a row (or a "bad number"), as before, so that the column
// ids of a shard stay what they were. So scan only looks ids up; when a
// path has none yet, it sets unknown, and the mapper scans an accepted
// line again with create set.
type flattener struct {
	m       *mapper
	tsField string
	drop    []string
	idName  string

	create    bool // give new paths the next column id
	unknown   bool // a path had no column id (and create was off)
	line      []byte
	id, ts    topLookup
	path      []byte // source path of the member being read
	badNumber bool
	mismatch  string // a value its pinned column cannot hold: what and where
	scratch   []byte // unescaped strings
	arr       []byte // array text
}

// scan reads one line. ok is false when the line is not valid JSON (as
// fastjson judges it); isObject tells an object from other values. The
// fields of an object are left in f.fields, the dedupe key and timestamp
// candidates in f.id and f.ts.
func (f *flattener) scan(line []byte) (isObject, ok bool) {
	f.line = line
	f.id, f.ts = topLookup{}, topLookup{}
	f.path = f.path[:0]
	f.m.fields = f.m.fields[:0]
	f.m.rowCols = f.m.rowCols[:0]
	f.m.nfields = 0
	f.badNumber = false
	f.mismatch = ""
	f.unknown = false
	i := skipWS(line, 0)
	if i >= len(line) {
		return false, false
	}
	if line[i] == '{' {
		isObject = true
		i, ok = f.object(i+1, 1, true)
	} else {
		f.arr = f.arr[:0]
		i, ok = f.skip(i, 1, false)
	}
	if !ok {
		return false, false
	}
	return isObject, skipWS(line, i) == len(line)
}

// object reads the members of an object whose '{' is just before i and
// flattens them under f.path; depth is the object's own nesting depth.
func (f *flattener) object(i, depth int, top bool) (int, bool) {
	b := f.line
	i = skipWS(b, i)
	if i >= len(b) {
		return i, false
	}
	if b[i] == '}' {
		return i + 1, true
	}
	base := len(f.path)
	defer func() { f.path = f.path[:base] }()
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		ke, kesc, ok := stringEnd(b, i+1)
		if !ok {
			return i, false
		}
		rawKey := b[i+1 : ke]
		i = skipWS(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = skipWS(b, i+1)
		f.path = f.path[:base]
		if !top {
			f.path = append(f.path, '.')
		}
		keyStart := len(f.path)
		if kesc {
			f.path = appendUnescaped(f.path, rawKey)
		} else {
			f.path = append(f.path, rawKey...)
		}
		skip := false
		if top {
			key := unsafe.String(unsafe.SliceData(f.path), len(f.path))
			skip = key == f.tsField
			for _, d := range f.drop {
				if key == d {
					skip = true
				}
			}
		}
		vs := i
		if i, ok = f.value(i, depth+1, skip); !ok {
			return i, false
		}
		if top {
			f.noteTop(rawKey, f.path[keyStart:], b[vs:i])
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// value reads the value of a member at i (after whitespace) and, unless
// skip, adds its fields under f.path.
func (f *flattener) value(i, depth int, skip bool) (int, bool) {
	b := f.line
	if i >= len(b) || depth > maxJSONDepth {
		return i, false
	}
	if skip {
		return f.skip(i, depth, false)
	}
	switch b[i] {
	case '{':
		return f.object(i+1, depth, false)
	case '[':
		f.arr = f.arr[:0]
		e, ok := f.skip(i, depth, true)
		if ok {
			f.addString(f.arr)
		}
		return e, ok
	case '"':
		e, esc, ok := stringEnd(b, i+1)
		if !ok {
			return i, false
		}
		if esc {
			f.scratch = appendUnescaped(f.scratch[:0], b[i+1:e])
			f.addString(f.scratch)
		} else {
			f.addString(b[i+1 : e])
		}
		return e + 1, true
	case 't':
		if !hasLiteral(b[i:], "true") {
			return i, false
		}
		if f.begin(kindBool) {
			f.m.fields = append(f.m.fields, 1)
		}
		return i + 4, true
	case 'f':
		if !hasLiteral(b[i:], "false") {
			return i, false
		}
		if f.begin(kindBool) {
			f.m.fields = append(f.m.fields, 0)
		}
		return i + 5, true
	case 'n':
		if hasLiteral(b[i:], "null") {
			f.begin(kindNull)
			return i + 4, true
		}
		if len(b)-i >= 3 && equalFoldASCII(b[i:i+3], "nan") {
			f.badNumber = true
			return i + 3, true
		}
		return i, false
	}
	e, ok := numberEnd(b, i)
	if !ok {
		return i, false
	}
	f.addNumber(b[i:e])
	return e, true
}

// skip checks the value at i and, when render, appends its JSON text with
// the whitespace outside strings removed to f.arr.
//
//nolint:gocognit // one pass over a value of any kind, on the map's hot path: split into calls per kind it measured slower
func (f *flattener) skip(i, depth int, render bool) (int, bool) {
	b := f.line
	if i >= len(b) || depth > maxJSONDepth {
		return i, false
	}
	switch c := b[i]; c {
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		if render {
			f.arr = append(f.arr, c)
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return i, false
		}
		if b[i] == closer {
			if render {
				f.arr = append(f.arr, closer)
			}
			return i + 1, true
		}
		for {
			i = skipWS(b, i)
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				ke, _, ok := stringEnd(b, i+1)
				if !ok {
					return i, false
				}
				if render {
					f.arr = append(f.arr, b[i:ke+1]...)
				}
				i = skipWS(b, ke+1)
				if i >= len(b) || b[i] != ':' {
					return i, false
				}
				if render {
					f.arr = append(f.arr, ':')
				}
				i = skipWS(b, i+1)
			}
			var ok bool
			if i, ok = f.skip(i, depth+1, render); !ok {
				return i, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				if render {
					f.arr = append(f.arr, ',')
				}
				i++
			case closer:
				if render {
					f.arr = append(f.arr, closer)
				}
				return i + 1, true
			default:
				return i, false
			}
		}
	case '"':
		e, _, ok := stringEnd(b, i+1)
		if !ok {
			return i, false
		}
		e++
		if render {
			f.arr = append(f.arr, b[i:e]...)
		}
		return e, true
	}
	var e int
	switch b[i] {
	case 't':
		if !hasLiteral(b[i:], "true") {
			return i, false
		}
		e = i + 4
	case 'f':
		if !hasLiteral(b[i:], "false") {
			return i, false
		}
		e = i + 5
	case 'n':
		switch {
		case hasLiteral(b[i:], "null"):
			e = i + 4
		case len(b)-i >= 3 && equalFoldASCII(b[i:i+3], "nan"):
			e = i + 3
		default:
			return i, false
		}
	default:
		var ok bool
		if e, ok = numberEnd(b, i); !ok {
			return i, false
		}
	}
	if render {
		f.arr = append(f.arr, b[i:e]...)
	}
	return e, true
}

// noteTop records a top-level member if its key is the dedupe key or the
// timestamp field. v is the member's value as written.
func (f *flattener) noteTop(rawKey, key, v []byte) {
	for _, c := range [2]struct {
		name string
		l    *topLookup
	}{{f.idName, &f.id}, {f.tsField, &f.ts}} {
		if !c.l.raw.found && string(rawKey) == c.name {
			c.l.raw = topOf(v)
		}
		if !c.l.unescaped.found && string(key) == c.name {
			c.l.unescaped = topOf(v)
		}
	}
}

func topOf(v []byte) topValue {
	t := topValue{found: true}
	switch v[0] {
	case '{':
		t.typ = jsonObject
	case '[':
		t.typ = jsonArray
	case '"':
		t.typ = jsonString
		t.raw = v[1 : len(v)-1]
	case 't':
		t.typ = jsonTrue
	case 'f':
		t.typ = jsonFalse
	case 'n':
		t.typ = jsonNull
		if len(v) == 3 { // nan
			t.typ = jsonNumber
		}
	default:
		t.typ = jsonNumber
	}
	return t
}

// lookup finds a top-level member the way fastjson's Object.Get did: by
// the key as written while no lookup has needed the unescaped keys, else by
// the unescaped key (and from then on always by it). unescaped carries that
// state from one lookup to the next within a line.
func lookup(l *topLookup, name string, unescaped *bool) *topValue {
	if !*unescaped && !containsByte(name, '\\') && l.raw.found {
		return &l.raw
	}
	*unescaped = true
	if l.unescaped.found {
		return &l.unescaped
	}
	return nil
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// begin starts a field of the given kind at f.path: its column id and
// kind. It reports false, and the caller skips the payload, when the path
// has no column id yet and f.create is off.
func (f *flattener) begin(kind byte) bool {
	m := f.m
	// Events mostly write their fields in the same order, whatever their
	// type adds or leaves out, so the column that followed the previous
	// field's column last time is the likely answer: a string compare
	// instead of a hash lookup. prev is that column's id + 1 (0: the
	// record's first field).
	prev := 0
	if m.nfields > 0 {
		prev = int(m.rowCols[len(m.rowCols)-2]) + 1
	}
	var id uint32
	if prev < len(m.succ) && m.succ[prev] != 0 && m.colPaths[m.succ[prev]-1] == string(f.path) {
		id = m.succ[prev] - 1
	} else {
		var ok bool
		id, ok = m.colIDs[string(f.path)]
		if !ok {
			if !f.create {
				f.unknown = true
				return false
			}
			id = uint32(len(m.colPaths))
			p := string(f.path)
			m.colPaths = append(m.colPaths, p)
			m.colIDs[p] = id
			m.pins = append(m.pins, m.pinOf(p))
		}
		for len(m.succ) <= prev {
			m.succ = append(m.succ, 0)
		}
		m.succ[prev] = id + 1
	}
	if pin := m.pins[id]; pin != noPin && !pinHolds(pin, kind) && f.mismatch == "" {
		f.mismatch = fmt.Sprintf("%s: a %s where the pinned type is %s", f.path, intermediate.KindName(kind), pin)
	}
	m.fields = binary.AppendUvarint(m.fields, uint64(id))
	m.fields = append(m.fields, kind)
	m.rowCols = append(m.rowCols, id, uint32(kind))
	m.nfields++
	return true
}

func (f *flattener) addString(s []byte) {
	if f.begin(kindString) {
		f.m.fields = binary.AppendUvarint(f.m.fields, uint64(len(s)))
		f.m.fields = append(f.m.fields, s...)
	}
}

// addNumber classifies a number as the old path did: a valid JSON number
// without '.', 'e' or 'E' that fits an int64 is an int, any other valid
// one a double (±Inf when out of range); an invalid one makes the line a
// "bad number" and adds no field.
func (f *flattener) addNumber(raw []byte) {
	if !validNumber(raw) {
		f.badNumber = true
		return
	}
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	if !bytes.ContainsAny(raw, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if f.begin(kindInt) {
				f.m.fields = binary.AppendVarint(f.m.fields, n)
				if (n > maxExactDouble || n < -maxExactDouble) && f.m.lastPin() == column.TypeDouble && f.mismatch == "" {
					f.mismatch = fmt.Sprintf("%s: %d has no exact double (the pinned type)", f.path, n)
				}
			}
			return
		}
	}
	v, _ := strconv.ParseFloat(s, 64)
	if f.begin(kindDouble) {
		f.m.fields = binary.LittleEndian.AppendUint64(f.m.fields, math.Float64bits(v))
	}
}
