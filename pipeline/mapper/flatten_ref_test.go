package mapper

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson"
)

// refReader is the line reader the flattener replaced, kept as the
// reference for the differential tests: fastjson's parse tree walked with
// Object.Visit, as in mapshard.go before the single-pass flattener. It
// fills the fields of its own mapper.
type refReader struct {
	m         *mapper
	parser    fastjson.Parser
	visitFn   func([]byte, *fastjson.Value)
	depth     int
	path      []byte
	tmp       []byte
	badNumber bool
}

func newRefReader(m *mapper) *refReader {
	r := &refReader{m: m}
	r.visitFn = r.visit
	return r
}

func (r *refReader) readLine(line []byte) lineResult {
	m := r.m
	v, err := r.parser.ParseBytes(line)
	if err != nil {
		return lineResult{reason: ReasonInvalidJSON, detail: err.Error()}
	}
	if v.Type() != fastjson.TypeObject {
		return lineResult{reason: ReasonNotObject}
	}
	o, _ := v.Object()
	idv := o.Get(m.spec.DedupeKey)
	if idv == nil || idv.Type() == fastjson.TypeNull {
		return lineResult{reason: ReasonMissingKey, detail: m.spec.DedupeKey}
	}
	if idv.Type() != fastjson.TypeString {
		return lineResult{reason: ReasonBadKey, detail: m.spec.DedupeKey + " is " + idv.Type().String()}
	}
	id, _ := idv.StringBytes()
	if len(id) == 0 {
		return lineResult{reason: ReasonEmptyKey, detail: m.spec.DedupeKey}
	}
	tsv := o.Get(m.spec.TimestampField)
	if tsv == nil || tsv.Type() == fastjson.TypeNull {
		return lineResult{reason: ReasonMissingTimestamp, detail: m.spec.TimestampField}
	}
	if tsv.Type() != fastjson.TypeString {
		return lineResult{reason: ReasonBadTimestamp, detail: m.spec.TimestampField + " is " + tsv.Type().String()}
	}
	tsb, _ := tsv.StringBytes()
	us, ok := parseTimestamp(tsb)
	if !ok {
		return lineResult{reason: ReasonBadTimestamp, detail: m.spec.TimestampField}
	}
	off := m.zone.offset(floorDiv(us, 1e6))
	res := lineResult{hasDay: true, day: floorDiv(us+off*1e6, 86400e6), us: us, off: off, id: bytes.Clone(id)}
	if res.day < m.startDay || res.day > m.endDay {
		res.outside = true
		return res
	}
	m.fields = m.fields[:0]
	m.rowCols = m.rowCols[:0]
	m.nfields = 0
	r.badNumber = false
	r.depth = 0
	r.path = r.path[:0]
	o.Visit(r.visitFn)
	if r.badNumber {
		res.reason, res.detail = ReasonInvalidJSON, "bad number"
	}
	return res
}

func (r *refReader) visit(k []byte, v *fastjson.Value) {
	m := r.m
	base := len(r.path)
	if r.depth == 0 {
		if string(k) == m.spec.TimestampField {
			return
		}
		for _, d := range m.drop {
			if string(k) == d {
				return
			}
		}
	} else {
		r.path = append(r.path, '.')
	}
	r.path = append(r.path, k...)
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		r.depth++
		o.Visit(r.visitFn)
		r.depth--
	case fastjson.TypeArray:
		r.tmp = v.MarshalTo(r.tmp[:0])
		r.addString(r.tmp)
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		r.addString(s)
	case fastjson.TypeNumber:
		r.tmp = v.MarshalTo(r.tmp[:0])
		r.addNumber(r.tmp)
	case fastjson.TypeTrue:
		r.addField(kindBool)
		m.fields = append(m.fields, 1)
	case fastjson.TypeFalse:
		r.addField(kindBool)
		m.fields = append(m.fields, 0)
	case fastjson.TypeNull:
		r.addField(kindNull)
	}
	r.path = r.path[:base]
}

func (r *refReader) addField(kind byte) {
	m := r.m
	id, ok := m.colIDs[string(r.path)]
	if !ok {
		id = uint32(len(m.colPaths))
		p := string(r.path)
		m.colPaths = append(m.colPaths, p)
		m.colIDs[p] = id
	}
	m.fields = binary.AppendUvarint(m.fields, uint64(id))
	m.fields = append(m.fields, kind)
	m.rowCols = append(m.rowCols, id, uint32(kind))
	m.nfields++
}

func (r *refReader) addString(s []byte) {
	r.addField(kindString)
	r.m.fields = binary.AppendUvarint(r.m.fields, uint64(len(s)))
	r.m.fields = append(r.m.fields, s...)
}

func (r *refReader) addNumber(raw []byte) {
	m := r.m
	if !validNumber(raw) {
		r.badNumber = true
		return
	}
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	if !bytes.ContainsAny(raw, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			r.addField(kindInt)
			m.fields = binary.AppendVarint(m.fields, n)
			return
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	r.addField(kindDouble)
	m.fields = binary.LittleEndian.AppendUint64(m.fields, math.Float64bits(f))
}
