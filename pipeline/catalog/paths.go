package catalog

// FieldPath is a leaf of a table's columns: a primitive or array field,
// its path the names on the way joined with "." (context.device.model),
// as the job's flattener names source fields.
type FieldPath struct {
	Path string
	Type Type
}

// FieldPaths lists the leaves of the table's columns, structs opened.
func (t Table) FieldPaths() []FieldPath {
	var out []FieldPath
	var walk func(prefix string, cols []Column)
	walk = func(prefix string, cols []Column) {
		for _, c := range cols {
			p := prefix + c.Name
			if c.Type.Kind == KindStruct {
				walk(p+".", c.Type.Fields)
				continue
			}
			out = append(out, FieldPath{Path: p, Type: c.Type})
		}
	}
	walk("", t.Columns)
	return out
}
