package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"sluice/pipeline/format/formats"
)

// DDLOptions tune the Athena DDL printed for a table.
type DDLOptions struct {
	// Projection adds partition-projection TBLPROPERTIES, so Athena finds
	// partitions without ALTER TABLE ADD PARTITION or a crawler.
	Projection bool
	// MapLocation rewrites location prefixes (e.g. file:///data/ to
	// s3://bucket/), for catalogs built on local folders.
	MapLocation map[string]string
	// PartitionBatch is how many partitions one ALTER TABLE adds
	// (default 100).
	PartitionBatch int
	// Now is the end of date projection ranges (default time.Now).
	Now time.Time
}

// Hive SerDe and formats of the crawled JSON input, as Athena and Glue
// name them (the output formats name theirs: format.Format.Hive).
const (
	serdeJSON       = "org.openx.data.jsonserde.JsonSerDe"
	inputText       = "org.apache.hadoop.mapred.TextInputFormat"
	outputText      = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
	dayMillis       = 24 * 60 * 60 * 1000
	projectionYears = 10 // how far projected ranges reach past the newest partition
)

// Storage describes how a table's files are read: what Athena's ROW FORMAT
// / STORED AS and Glue's StorageDescriptor say.
type Storage struct {
	SerDe        string
	SerDeParams  map[string]string
	InputFormat  string
	OutputFormat string
	Params       map[string]string // table properties
}

// StorageOf returns the SerDe and formats for t.Format. JSON columns whose
// name Hive cannot hold (dots, spaces, ...) are renamed by HiveColumns and
// mapped back to the JSON key with the SerDe's mapping.<column> property.
func StorageOf(t Table) (Storage, error) {
	switch t.Format {
	case "json":
		s := Storage{SerDe: serdeJSON, InputFormat: inputText, OutputFormat: outputText,
			// Segment logs hold the odd broken line; skip it rather than
			// fail the query.
			SerDeParams: map[string]string{"ignore.malformed.json": "true"},
			Params:      map[string]string{"classification": "json"}}
		for _, c := range t.Columns {
			if h := HiveName(c.Name); h != strings.ToLower(c.Name) {
				s.SerDeParams["mapping."+h] = c.Name
			}
		}
		if t.Compression != "" && t.Compression != "none" {
			s.Params["compressionType"] = t.Compression
		}
		return s, nil
	}
	// Sluice's output formats say themselves how Hive reads them.
	if ff, err := formats.ByName(t.Format); err == nil {
		h := ff.Hive(t.Compression)
		s := Storage{SerDe: h.SerDe, SerDeParams: h.SerDeParams, InputFormat: h.InputFormat, OutputFormat: h.OutputFormat, Params: h.Params}
		maps.Copy(s.Params, t.Properties) // skip.header.line.count when CSV files have a header
		return s, nil
	}
	return Storage{}, fmt.Errorf("table %s: no Athena DDL for format %q", t.QualifiedName(), t.Format)
}

// HiveName is the name a column gets in Hive/Athena: lower case (Athena
// lower-cases names anyway), with anything but letters, digits and '_'
// replaced by '_'.
func HiveName(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// HiveColumns returns t's columns as Athena and Glue should see them:
// top-level names through HiveName for JSON tables (the SerDe maps them
// back), as they are otherwise (Parquet and CSV columns are matched by name
// and position respectively).
//
// Types go through HiveType: an object that was always empty (Segment's
// "integrations": {}) is struct<> in the catalog, which Hive cannot
// declare; it becomes string, which the JSON SerDe fills with the object's
// text.
func HiveColumns(t Table) []Column {
	out := slices.Clone(t.Columns)
	for i := range out {
		if t.Format == "json" {
			out[i].Name = HiveName(out[i].Name)
		}
		out[i].Type = HiveType(out[i].Type)
	}
	return out
}

// HiveType replaces struct<> (no fields known), anywhere in t, by string.
func HiveType(t Type) Type {
	switch t.Kind {
	case KindStruct:
		if len(t.Fields) == 0 {
			return Prim(KindString)
		}
		out := Type{Kind: KindStruct, Fields: make([]Column, len(t.Fields))}
		for i, f := range t.Fields {
			out.Fields[i] = Column{Name: f.Name, Type: HiveType(f.Type)}
		}
		return out
	case KindArray:
		return ArrayOf(HiveType(t.elem()))
	}
	return t
}

func quoteIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (o DDLOptions) location(loc string) (string, error) {
	return MapS3Location(loc, o.MapLocation)
}

// MapS3Location rewrites loc by the first matching prefix of mapping and
// fails unless the result is an s3:// URL.
func MapS3Location(loc string, mapping map[string]string) (string, error) {
	for from, to := range mapping {
		if rest, ok := strings.CutPrefix(loc, from); ok {
			loc = to + rest
			break
		}
	}
	if !strings.HasPrefix(loc, "s3://") {
		return "", fmt.Errorf("location %s is not an s3:// URL, which Athena needs; map it with -map-location %s=s3://bucket/prefix/", loc, loc)
	}
	return loc, nil
}

// CreateTableDDL prints Athena's CREATE EXTERNAL TABLE for t. parts are
// used only for projection ranges.
func CreateTableDDL(t Table, parts []Partition, o DDLOptions) (string, error) {
	st, err := StorageOf(t)
	if err != nil {
		return "", err
	}
	loc, err := o.location(strings.TrimRight(t.Location, "/") + "/")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s.%s (\n", quoteIdent(t.Database), quoteIdent(t.Name))
	cols := HiveColumns(t)
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s %s%s\n", quoteIdent(c.Name), c.Type, sep)
	}
	b.WriteString(")\n")
	keys := t.PartitionKeys
	var proj map[string]string
	if o.Projection && len(keys) > 0 {
		keys, proj = projection(t, parts, loc, o)
	}
	if len(keys) > 0 {
		var ks []string
		for _, k := range keys {
			ks = append(ks, quoteIdent(k.Name)+" "+k.Type.String())
		}
		fmt.Fprintf(&b, "PARTITIONED BY (%s)\n", strings.Join(ks, ", "))
	}
	fmt.Fprintf(&b, "ROW FORMAT SERDE %s\n", quoteString(st.SerDe))
	if len(st.SerDeParams) > 0 {
		fmt.Fprintf(&b, "WITH SERDEPROPERTIES (\n%s)\n", properties(st.SerDeParams))
	}
	fmt.Fprintf(&b, "STORED AS INPUTFORMAT %s\nOUTPUTFORMAT %s\n", quoteString(st.InputFormat), quoteString(st.OutputFormat))
	fmt.Fprintf(&b, "LOCATION %s\n", quoteString(loc))
	params := map[string]string{}
	for k, v := range st.Params {
		params[k] = v
	}
	for k, v := range proj {
		params[k] = v
	}
	fmt.Fprintf(&b, "TBLPROPERTIES (\n%s);\n", properties(params))
	return b.String(), nil
}

func properties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		sep := ","
		if i == len(keys)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s=%s%s\n", quoteString(k), quoteString(m[k]), sep)
	}
	return b.String()
}

// projection returns the partition keys as projected and the projection
// properties. Segment's received-day folders are epoch milliseconds, which
// no date format can spell, so the projected raw table exposes them as
// received_day_ms bigint, an integer projection with an interval of one
// day. Output tables get year and month as integers and date as a date
// projection (yyyy-MM-dd up to NOW). Other keys are left out of projection
// (injected: queries must give them).
func projection(t Table, parts []Partition, loc string, o DDLOptions) ([]Column, map[string]string) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	p := map[string]string{"projection.enabled": "true"}
	var keys []Column
	var tmpl []string
	first := func(i int) (string, string) { // smallest and largest value of key i
		var lo, hi string
		for _, pt := range parts {
			if i < len(pt.Values) && !pt.Missing {
				v := pt.Values[i]
				if lo == "" || lessValue(v, lo) {
					lo = v
				}
				if hi == "" || lessValue(hi, v) {
					hi = v
				}
			}
		}
		return lo, hi
	}
	for i, k := range t.PartitionKeys {
		lo, hi := first(i)
		switch {
		case k.Name == "received_day" && k.Type.Kind == KindDate:
			name := "received_day_ms"
			keys = append(keys, Column{Name: name, Type: Prim(KindBigint)})
			start, end := now.UTC().Truncate(24*time.Hour), now.UTC().Truncate(24*time.Hour)
			if d, err := time.Parse(time.DateOnly, lo); err == nil {
				start = d
			}
			if d, err := time.Parse(time.DateOnly, hi); err == nil {
				end = d
			}
			end = end.AddDate(projectionYears, 0, 0)
			p["projection."+name+".type"] = "integer"
			p["projection."+name+".range"] = fmt.Sprintf("%d,%d", start.UnixMilli(), end.UnixMilli())
			p["projection."+name+".interval"] = strconv.Itoa(dayMillis)
			tmpl = append(tmpl, "${"+name+"}")
		case k.Type.Kind == KindInt || k.Type.Kind == KindBigint:
			keys = append(keys, k)
			lov, _ := strconv.Atoi(lo)
			hiv, _ := strconv.Atoi(hi)
			switch k.Name {
			case "month":
				lov, hiv = 1, 12
			case "year":
				hiv += projectionYears
			}
			p["projection."+k.Name+".type"] = "integer"
			p["projection."+k.Name+".range"] = fmt.Sprintf("%d,%d", lov, hiv)
			tmpl = append(tmpl, k.Name+"=${"+k.Name+"}")
		case isDateValue(lo):
			keys = append(keys, k)
			p["projection."+k.Name+".type"] = "date"
			p["projection."+k.Name+".format"] = "yyyy-MM-dd"
			p["projection."+k.Name+".range"] = lo + ",NOW"
			p["projection."+k.Name+".interval"] = "1"
			p["projection."+k.Name+".interval.unit"] = "DAYS"
			tmpl = append(tmpl, k.Name+"=${"+k.Name+"}")
		default:
			keys = append(keys, k)
			p["projection."+k.Name+".type"] = "injected"
			tmpl = append(tmpl, k.Name+"=${"+k.Name+"}")
		}
	}
	p["storage.location.template"] = loc + strings.Join(tmpl, "/") + "/"
	return keys, p
}

func isDateValue(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// lessValue orders partition values numerically when both are integers.
func lessValue(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

// AddPartitionsDDL prints ALTER TABLE ... ADD IF NOT EXISTS PARTITION
// statements for the partitions that are not missing, at most
// o.PartitionBatch per statement.
func AddPartitionsDDL(t Table, parts []Partition, o DDLOptions) ([]string, error) {
	batch := o.PartitionBatch
	if batch <= 0 {
		batch = 100
	}
	var out []string
	var b strings.Builder
	n := 0
	flush := func() {
		if n > 0 {
			b.WriteString(";\n")
			out = append(out, b.String())
			b.Reset()
			n = 0
		}
	}
	for _, p := range parts {
		if p.Missing {
			continue
		}
		loc, err := o.location(p.Location)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			fmt.Fprintf(&b, "ALTER TABLE %s.%s ADD IF NOT EXISTS", quoteIdent(t.Database), quoteIdent(t.Name))
		}
		var kv []string
		for i, v := range p.Values {
			k := Column{Name: fmt.Sprintf("partition_%d", i), Type: Prim(KindString)}
			if i < len(t.PartitionKeys) {
				k = t.PartitionKeys[i]
			}
			val := quoteString(v)
			if k.Type.Kind == KindInt || k.Type.Kind == KindBigint {
				val = v
			}
			kv = append(kv, quoteIdent(k.Name)+"="+val)
		}
		fmt.Fprintf(&b, "\n  PARTITION (%s) LOCATION %s", strings.Join(kv, ", "), quoteString(loc))
		n++
		if n == batch {
			flush()
		}
	}
	flush()
	return out, nil
}
