package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Kind is the name of a Hive/Glue type.
type Kind string

// The kinds the catalog understands. Struct and Array are nested; the rest
// are primitives.
const (
	KindString    Kind = "string"
	KindInt       Kind = "int"
	KindBigint    Kind = "bigint"
	KindDouble    Kind = "double"
	KindBoolean   Kind = "boolean"
	KindTimestamp Kind = "timestamp"
	KindDate      Kind = "date"
	KindBinary    Kind = "binary"
	KindStruct    Kind = "struct"
	KindArray     Kind = "array"
)

// Type is a full, possibly nested column type. Struct fields keep their
// order. In JSON a Type is stored as its Hive type string, so the catalog
// documents stay readable.
type Type struct {
	Kind   Kind
	Fields []Column // KindStruct only, in order
	Elem   *Type    // KindArray only
}

// Prim returns a primitive type of kind k.
func Prim(k Kind) Type { return Type{Kind: k} }

// StructOf returns a struct type with the given ordered fields.
func StructOf(fields ...Column) Type { return Type{Kind: KindStruct, Fields: fields} }

// ArrayOf returns array<elem>.
func ArrayOf(elem Type) Type { return Type{Kind: KindArray, Elem: &elem} }

// IsPrimitive reports whether t has no nested types.
func (t Type) IsPrimitive() bool { return t.Kind != KindStruct && t.Kind != KindArray }

// Field returns the struct field called name, if any.
func (t Type) Field(name string) (Column, bool) {
	for _, f := range t.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Column{}, false
}

// String prints t in Hive type syntax, e.g. struct<name:string,n:array<int>>.
func (t Type) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t Type) write(b *strings.Builder) {
	switch t.Kind {
	case KindStruct:
		b.WriteString("struct<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			writeName(b, f.Name)
			b.WriteByte(':')
			f.Type.write(b)
		}
		b.WriteByte('>')
	case KindArray:
		b.WriteString("array<")
		if t.Elem != nil {
			t.Elem.write(b)
		} else {
			b.WriteString(string(KindString))
		}
		b.WriteByte('>')
	default:
		b.WriteString(string(t.Kind))
	}
}

// writeName back-quotes names Hive could not read bare (Segment property
// names often contain spaces or '$').
func writeName(b *strings.Builder, name string) {
	if name != "" && strings.IndexFunc(name, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		b.WriteString(name)
		return
	}
	b.WriteByte('`')
	b.WriteString(strings.ReplaceAll(name, "`", "``"))
	b.WriteByte('`')
}

// Equal reports whether a and b describe the same type, field order included.
func (t Type) Equal(o Type) bool {
	if t.Kind != o.Kind || len(t.Fields) != len(o.Fields) {
		return false
	}
	for i := range t.Fields {
		if t.Fields[i].Name != o.Fields[i].Name || !t.Fields[i].Type.Equal(o.Fields[i].Type) {
			return false
		}
	}
	if t.Kind == KindArray {
		a, b := t.elem(), o.elem()
		return a.Equal(b)
	}
	return true
}

func (t Type) elem() Type {
	if t.Elem == nil {
		return Prim(KindString)
	}
	return *t.Elem
}

// MarshalJSON stores the Hive type string.
func (t Type) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON parses a Hive type string.
func (t *Type) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	p, err := ParseType(s)
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// ParseType parses Hive type syntax as printed by Type.String.
func ParseType(s string) (Type, error) {
	p := typeParser{s: s}
	t, err := p.parse()
	if err != nil {
		return Type{}, fmt.Errorf("parse type %q: %w", s, err)
	}
	if p.i != len(p.s) {
		return Type{}, fmt.Errorf("parse type %q: trailing text at %d", s, p.i)
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) parse() (Type, error) {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= 'a' && p.s[p.i] <= 'z') {
		p.i++
	}
	k := Kind(p.s[start:p.i])
	switch k {
	case KindString, KindInt, KindBigint, KindDouble, KindBoolean, KindTimestamp, KindDate, KindBinary:
		return Prim(k), nil
	case KindArray:
		if err := p.expect('<'); err != nil {
			return Type{}, err
		}
		e, err := p.parse()
		if err != nil {
			return Type{}, err
		}
		if err := p.expect('>'); err != nil {
			return Type{}, err
		}
		return ArrayOf(e), nil
	case KindStruct:
		if err := p.expect('<'); err != nil {
			return Type{}, err
		}
		t := Type{Kind: KindStruct}
		if p.peek() == '>' {
			p.i++
			return t, nil
		}
		for {
			name, err := p.name()
			if err != nil {
				return Type{}, err
			}
			if err := p.expect(':'); err != nil {
				return Type{}, err
			}
			ft, err := p.parse()
			if err != nil {
				return Type{}, err
			}
			t.Fields = append(t.Fields, Column{Name: name, Type: ft})
			switch p.peek() {
			case ',':
				p.i++
			case '>':
				p.i++
				return t, nil
			default:
				return Type{}, fmt.Errorf("expected ',' or '>' at %d", p.i)
			}
		}
	}
	return Type{}, fmt.Errorf("unknown type %q at %d", k, start)
}

func (p *typeParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *typeParser) expect(c byte) error {
	if p.peek() != c {
		return fmt.Errorf("expected %q at %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *typeParser) name() (string, error) {
	if p.peek() == '`' {
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			if c == '`' {
				if p.peek() == '`' {
					p.i++
					b.WriteByte('`')
					continue
				}
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		return "", fmt.Errorf("unterminated quoted name")
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ':' && p.s[p.i] != ',' && p.s[p.i] != '<' && p.s[p.i] != '>' {
		p.i++
	}
	if p.i == start {
		return "", fmt.Errorf("empty field name at %d", start)
	}
	return p.s[start:p.i], nil
}
