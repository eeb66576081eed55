package crawl

import (
	"slices"
	"strconv"

	"github.com/valyala/fastjson"

	"sluice/pipeline/catalog"
)

// kindUnknown is the type of null and of elements of empty arrays: it merges
// into anything and becomes string if nothing better is ever seen.
const kindUnknown catalog.Kind = "unknown"

var unknownType = catalog.Type{Kind: kindUnknown}

// conflicts collects type disagreements, one per field path.
type conflicts struct {
	byPath map[string]int
	list   []catalog.Conflict
}

func (c *conflicts) add(path, key string, a, b, resolved catalog.Type) {
	if c.byPath == nil {
		c.byPath = map[string]int{}
	}
	i, ok := c.byPath[path]
	if !ok {
		i = len(c.list)
		c.byPath[path] = i
		c.list = append(c.list, catalog.Conflict{Path: path, Key: key, Widened: true})
	}
	cf := &c.list[i]
	for _, t := range []catalog.Type{a, b} {
		s := t.String()
		if !slices.Contains(cf.Types, s) {
			cf.Types = append(cf.Types, s)
		}
		if !isNumeric(t.Kind) {
			cf.Widened = false
		}
	}
	cf.Resolved = resolved.String()
}

func (c *conflicts) merge(o []catalog.Conflict) {
	for _, cf := range o {
		for _, t := range cf.Types {
			pt, err := catalog.ParseType(t)
			if err != nil {
				pt = catalog.Prim(catalog.KindString)
			}
			r, _ := catalog.ParseType(cf.Resolved)
			c.add(cf.Path, cf.Key, pt, pt, r)
		}
		c.list[c.byPath[cf.Path]].Resolved = cf.Resolved
		if !cf.Widened {
			c.list[c.byPath[cf.Path]].Widened = false
		}
	}
}

func isNumeric(k catalog.Kind) bool {
	return k == catalog.KindInt || k == catalog.KindBigint || k == catalog.KindDouble
}

var numericRank = map[catalog.Kind]int{catalog.KindInt: 0, catalog.KindBigint: 1, catalog.KindDouble: 2}

// merge returns the narrowest type that holds values of a and of b. Fields
// of a keep their order; fields only in b are appended. Disagreements are
// recorded in cs under path, with key naming an object where they were seen.
func merge(path, key string, a, b catalog.Type, cs *conflicts) catalog.Type {
	switch {
	case a.Kind == kindUnknown:
		return b
	case b.Kind == kindUnknown:
		return a
	case a.Kind == catalog.KindStruct && b.Kind == catalog.KindStruct:
		out := catalog.Type{Kind: catalog.KindStruct, Fields: slices.Clone(a.Fields)}
		for _, f := range b.Fields {
			i := slices.IndexFunc(out.Fields, func(c catalog.Column) bool { return c.Name == f.Name })
			if i < 0 {
				out.Fields = append(out.Fields, f)
				continue
			}
			out.Fields[i].Type = merge(join(path, f.Name), key, out.Fields[i].Type, f.Type, cs)
		}
		return out
	case a.Kind == catalog.KindArray && b.Kind == catalog.KindArray:
		return catalog.ArrayOf(merge(path+"[]", key, elem(a), elem(b), cs))
	case a.Kind == b.Kind && a.IsPrimitive():
		return a
	case isNumeric(a.Kind) && isNumeric(b.Kind):
		out := a
		if numericRank[b.Kind] > numericRank[a.Kind] {
			out = b
		}
		cs.add(path, key, a, b, out)
		return out
	}
	out := catalog.Prim(catalog.KindString)
	cs.add(path, key, a, b, out)
	return out
}

func elem(t catalog.Type) catalog.Type {
	if t.Elem == nil {
		return unknownType
	}
	return *t.Elem
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// typeOf infers the type of one JSON value. Array elements are merged with
// each other, so conflicts inside one array are recorded too.
func typeOf(path, key string, v *fastjson.Value, cs *conflicts) catalog.Type {
	switch v.Type() {
	case fastjson.TypeObject:
		t := catalog.Type{Kind: catalog.KindStruct}
		v.GetObject().Visit(func(k []byte, fv *fastjson.Value) {
			name := string(k)
			if slices.ContainsFunc(t.Fields, func(c catalog.Column) bool { return c.Name == name }) {
				return // a repeated key: the first wins, as in most JSON readers
			}
			t.Fields = append(t.Fields, catalog.Column{Name: name, Type: typeOf(join(path, name), key, fv, cs)})
		})
		return t
	case fastjson.TypeArray:
		e := unknownType
		for _, ev := range v.GetArray() {
			e = merge(path+"[]", key, e, typeOf(path+"[]", key, ev, cs), cs)
		}
		return catalog.ArrayOf(e)
	case fastjson.TypeNumber:
		return numberType(v.MarshalTo(nil))
	case fastjson.TypeString:
		return catalog.Prim(catalog.KindString)
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return catalog.Prim(catalog.KindBoolean)
	}
	return unknownType
}

// numberType keeps JSON's integer/fraction distinction, which fastjson's
// float64 would lose.
func numberType(raw []byte) catalog.Type {
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n >= -1<<31 && n < 1<<31 {
			return catalog.Prim(catalog.KindInt)
		}
		return catalog.Prim(catalog.KindBigint)
	}
	return catalog.Prim(catalog.KindDouble)
}

// scalarType infers the type of a CSV cell.
func scalarType(s string) catalog.Type {
	switch s {
	case "":
		return unknownType
	case "true", "false", "TRUE", "FALSE", "True", "False":
		return catalog.Prim(catalog.KindBoolean)
	}
	if t := numberType([]byte(s)); t.Kind != catalog.KindDouble {
		return t
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return catalog.Prim(catalog.KindDouble)
	}
	return catalog.Prim(catalog.KindString)
}

// finalize replaces unknown types (only nulls or empty arrays seen) by string.
func finalize(t catalog.Type) catalog.Type {
	switch t.Kind {
	case kindUnknown:
		return catalog.Prim(catalog.KindString)
	case catalog.KindStruct:
		out := catalog.Type{Kind: catalog.KindStruct, Fields: make([]catalog.Column, len(t.Fields))}
		for i, f := range t.Fields {
			out.Fields[i] = catalog.Column{Name: f.Name, Type: finalize(f.Type)}
		}
		return out
	case catalog.KindArray:
		return catalog.ArrayOf(finalize(elem(t)))
	}
	return t
}
