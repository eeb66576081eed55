package catalog

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

// Describe prints t as a human-readable report: header, the column tree
// (nested structs and arrays indented), partition keys, the partitions with
// their files, rows and bytes, and recorded type conflicts.
func Describe(w io.Writer, t Table, parts []Partition) error {
	ew := &errWriter{w: w}
	ew.printf("Table %s  (version %d, updated %s)\n", t.QualifiedName(), t.Version, t.UpdatedAt.UTC().Format(time.RFC3339))
	ew.printf("  location     %s\n", t.Location)
	ew.printf("  format       %s, compression %s\n", t.Format, t.Compression)

	ew.printf("Columns (%d)\n", len(t.Columns))
	tw := tabwriter.NewWriter(ew, 0, 2, 2, ' ', 0)
	for _, c := range t.Columns {
		describeColumn(tw, "  ", c.Name, c.Type)
	}
	tw.Flush()

	if len(t.PartitionKeys) > 0 {
		ew.printf("Partition keys\n")
		tw = tabwriter.NewWriter(ew, 0, 2, 2, ' ', 0)
		for _, c := range t.PartitionKeys {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Type)
		}
		tw.Flush()
	}

	ew.printf("Partitions (%d)\n", len(parts))
	if len(parts) > 0 {
		tw = tabwriter.NewWriter(ew, 0, 2, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  \tfiles\trows\tbytes\t\n")
		for _, p := range parts {
			rows := "?"
			if p.Rows > 0 {
				rows = fmt.Sprint(p.Rows)
			}
			name := partitionName(t.PartitionKeys, p.Values)
			if p.Missing {
				name += " (missing)"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t\n", name, p.Files, rows, humanize.IBytes(uint64(p.Bytes)))
		}
		tw.Flush()
	}
	if len(t.Conflicts) > 0 {
		ew.printf("Type conflicts (%d)\n", len(t.Conflicts))
		for _, c := range t.Conflicts {
			how := "conflict"
			if c.Widened {
				how = "widened"
			}
			ew.printf("  %s: %s -> %s (%s, e.g. in %s)\n", c.Path, strings.Join(c.Types, ", "), c.Resolved, how, c.Key)
		}
	}
	return ew.err
}

func describeColumn(w io.Writer, indent, name string, t Type) {
	switch t.Kind {
	case KindStruct:
		fmt.Fprintf(w, "%s%s\tstruct\n", indent, name)
		for _, f := range t.Fields {
			describeColumn(w, indent+"  ", f.Name, f.Type)
		}
	case KindArray:
		e := t.elem()
		if e.IsPrimitive() {
			fmt.Fprintf(w, "%s%s\t%s\n", indent, name, t)
			return
		}
		fmt.Fprintf(w, "%s%s\tarray<%s>\n", indent, name, e.Kind)
		describeColumn(w, indent+"  ", "[]", e)
	default:
		fmt.Fprintf(w, "%s%s\t%s\n", indent, name, t.Kind)
	}
}

// partitionName is the Hive spelling, e.g. year=2024/month=3.
func partitionName(keys []Column, values []string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		k := fmt.Sprintf("partition_%d", i)
		if i < len(keys) {
			k = keys[i].Name
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, "/")
}

// errWriter keeps the first write error so Describe can report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// DescribeHistory prints one line per schema version, oldest first, with
// what changed from the version before: columns added, columns whose type
// changed, partition keys, format.
func DescribeHistory(w io.Writer, versions []Table) error {
	ew := &errWriter{w: w}
	if len(versions) == 1 {
		ew.printf("History (1 version)\n")
	} else {
		ew.printf("History (%d versions)\n", len(versions))
	}
	var prev *Table
	for i := range versions {
		v := &versions[i]
		var what []string
		if prev == nil {
			what = append(what, fmt.Sprintf("created: %d columns, format %s", len(v.Columns), v.Format))
		} else {
			for _, c := range v.Columns {
				o, ok := prev.Column(c.Name)
				switch {
				case !ok:
					what = append(what, "+"+c.Name+" "+c.Type.String())
				case !o.Type.Equal(c.Type):
					what = append(what, "~"+c.Name+" "+o.Type.String()+" -> "+c.Type.String())
				}
			}
			for _, o := range prev.Columns {
				if _, ok := v.Column(o.Name); !ok {
					what = append(what, "-"+o.Name)
				}
			}
			if !slicesEqualColumns(prev.PartitionKeys, v.PartitionKeys) {
				what = append(what, "partition keys "+columnList(v.PartitionKeys))
			}
			if prev.Format != v.Format || prev.Compression != v.Compression {
				what = append(what, "format "+v.Format+"/"+v.Compression)
			}
		}
		ew.printf("  v%-3d %s  %s\n", v.Version, v.UpdatedAt.UTC().Format(time.RFC3339), strings.Join(what, ", "))
		prev = v
	}
	return ew.err
}

func slicesEqualColumns(a, b []Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !columnEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func columnList(cs []Column) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name+" "+c.Type.String())
	}
	return "(" + strings.Join(s, ", ") + ")"
}
