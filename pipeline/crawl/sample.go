package crawl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/valyala/fastjson"

	"sluice/pipeline/catalog"
	"sluice/pipeline/iocount"
	"sluice/pipeline/storage"
)

// Formats a file can be classified as.
const (
	formatJSON    = "json"
	formatParquet = "parquet"
	formatCSV     = "csv"
)

// classify guesses a file's format and compression from its name; "" means
// not a data file.
func classify(key string) (format, compression string) {
	name := strings.ToLower(key[strings.LastIndexByte(key, '/')+1:])
	compression = "none"
	if n, ok := strings.CutSuffix(name, ".gz"); ok {
		name, compression = n, "gzip"
	}
	switch {
	case strings.HasSuffix(name, ".parquet"):
		return formatParquet, "" // the codec is inside the file
	case strings.HasSuffix(name, ".csv"):
		return formatCSV, compression
	case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
		return formatJSON, compression
	case compression == "gzip" && !strings.Contains(name, "."):
		// Segment names its files <millis>.<hash>.gz with no inner extension;
		// a bare .gz is taken as NDJSON and rejected if it does not parse.
		return formatJSON, compression
	case compression == "gzip" && strings.Count(name, ".") == 1:
		return formatJSON, compression
	}
	return "", ""
}

// sample is what reading one file taught us.
type sample struct {
	format      string
	compression string
	schema      catalog.Type // struct of the top-level columns
	conflicts   []catalog.Conflict
	records     int   // parsed records
	bad         int   // lines or rows that did not parse
	rows        int64 // parquet: exact row count from the footer, else 0
	bytesRead   int64
	unreadable  string // why the file gave no schema, if it did not
	header      bool   // csv: the first row names the columns
}

func sampleFile(ctx context.Context, src storage.Reader, o object, opts Options) (s sample, err error) {
	f, comp := classify(o.Key)
	// s is a named result so that the deferred byte count below reaches
	// the caller.
	s = sample{format: f, compression: comp, schema: unknownType}
	switch f {
	case formatParquet:
		return sampleParquet(ctx, src, o, s)
	case formatJSON, formatCSV:
	default:
		s.unreadable = "unknown format"
		return s, nil
	}
	rc, err := src.Get(ctx, o.Key)
	if err != nil {
		return s, fmt.Errorf("get %s: %w", o.Key, err)
	}
	defer rc.Close()
	cr := &iocount.Reader{R: rc}
	defer func() { s.bytesRead = cr.N }()
	br := bufio.NewReaderSize(cr, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		s.compression = "gzip"
		zr, err := gzip.NewReader(br)
		if err != nil {
			s.unreadable = "bad gzip header"
			return s, nil
		}
		defer zr.Close()
		r = zr
	} else if len(magic) == 0 {
		s.unreadable = "empty"
		return s, nil
	}
	var cs conflicts
	if f == formatCSV {
		err = sampleCSV(r, o.Key, opts, &s, &cs)
	} else {
		err = sampleJSON(r, o.Key, opts, &s, &cs)
	}
	if err != nil {
		return s, fmt.Errorf("read %s: %w", o.Key, err)
	}
	s.conflicts = cs.list
	if s.records == 0 && s.unreadable == "" {
		if s.bad > 0 {
			s.unreadable = "no parseable " + f + " records"
		} else {
			s.unreadable = "empty"
		}
	}
	return s, nil
}

func sampleJSON(r io.Reader, key string, opts Options, s *sample, cs *conflicts) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var p fastjson.Parser
	for s.records < opts.SampleRecordsPerFile && sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := p.ParseBytes(line)
		if err != nil || v.Type() != fastjson.TypeObject {
			s.bad++
			continue
		}
		s.records++
		s.schema = merge("", key, s.schema, typeOf("", key, v, cs), cs)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		s.bad++ // a record over 16 MiB: keep what was sampled
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF):
		s.bad++ // a truncated upload: the records before the cut still count
	case err != nil:
		return err
	}
	return nil
}

// sampleCSV reads a CSV file, deciding as Glue does whether the first row
// is a header: it is when every cell of it is a non-empty string that is
// not a number or boolean and either some later column holds non-string
// values or the cells look like names (letters first, distinct). Without
// a header the columns are col_0, col_1, ...
func sampleCSV(r io.Reader, key string, opts Options, s *sample, cs *conflicts) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		s.bad++
		return nil
	}
	var rows [][]string
	for len(rows) < opts.SampleRecordsPerFile {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.bad++
			continue
		}
		rows = append(rows, rec)
	}
	rowType := func(rec []string, names []string) catalog.Type {
		t := catalog.Type{Kind: catalog.KindStruct}
		for i, n := range names {
			ft := unknownType
			if i < len(rec) {
				ft = scalarType(rec[i])
			}
			t.Fields = append(t.Fields, catalog.Column{Name: n, Type: ft})
		}
		return t
	}
	generic := make([]string, len(head))
	for i := range head {
		generic[i] = fmt.Sprintf("col_%d", i)
	}
	data := unknownType
	var dcs conflicts
	for _, rec := range rows {
		data = merge("", key, data, rowType(rec, generic), &dcs)
	}
	s.header = isHeader(head, data)
	names := generic
	if s.header {
		names = make([]string, len(head))
		seen := map[string]bool{}
		for i, h := range head {
			names[i] = catalog.HiveName(strings.TrimSpace(h))
			if names[i] == "" || seen[names[i]] {
				names[i] = fmt.Sprintf("col_%d", i)
			}
			seen[names[i]] = true
		}
	} else {
		rows = append([][]string{head}, rows...)
	}
	for _, rec := range rows {
		s.records++
		s.schema = merge("", key, s.schema, rowType(rec, names), cs)
	}
	if s.records == 0 {
		// A header-only file still defines the columns.
		t := catalog.Type{Kind: catalog.KindStruct}
		for _, n := range names {
			t.Fields = append(t.Fields, catalog.Column{Name: n, Type: unknownType})
		}
		s.schema = t
	}
	return nil
}

var nameLike = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ .$-]*$`)

func isHeader(head []string, data catalog.Type) bool {
	seen := map[string]bool{}
	looksLikeNames := true
	for _, h := range head {
		h = strings.TrimSpace(h)
		if h == "" || scalarType(h).Kind != catalog.KindString {
			return false
		}
		if !nameLike.MatchString(h) || seen[h] {
			looksLikeNames = false
		}
		seen[h] = true
	}
	if data.Kind == catalog.KindStruct {
		for _, f := range data.Fields {
			if k := f.Type.Kind; k != catalog.KindString && k != kindUnknown {
				return true
			}
		}
	}
	return looksLikeNames
}

// maxInMemory bounds the Parquet files read into memory; larger ones are
// spooled to a temporary file, since the footer needs random access.
const maxInMemory = 64 << 20

func sampleParquet(ctx context.Context, src storage.Reader, o object, s sample) (sample, error) {
	if o.Size == 0 {
		s.unreadable = "empty"
		return s, nil
	}
	rc, err := src.Get(ctx, o.Key)
	if err != nil {
		return s, fmt.Errorf("get %s: %w", o.Key, err)
	}
	defer rc.Close()
	var ra io.ReaderAt
	var size int64
	if o.Size <= maxInMemory {
		data, err := io.ReadAll(rc)
		if err != nil {
			return s, fmt.Errorf("read %s: %w", o.Key, err)
		}
		ra, size = bytes.NewReader(data), int64(len(data))
	} else {
		tmp, err := os.CreateTemp("", "sluice-crawl-*.parquet")
		if err != nil {
			return s, fmt.Errorf("spool %s: %w", o.Key, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if size, err = io.Copy(tmp, rc); err != nil {
			return s, fmt.Errorf("spool %s: %w", o.Key, err)
		}
		ra = tmp
	}
	s.bytesRead = size
	f, err := parquet.OpenFile(ra, size)
	if err != nil {
		s.unreadable = "not parquet: " + err.Error()
		return s, nil
	}
	s.rows = f.NumRows()
	s.records = int(min(s.rows, 1<<30))
	s.compression = "none"
	if rgs := f.Metadata().RowGroups; len(rgs) > 0 && len(rgs[0].Columns) > 0 {
		s.compression = strings.ToLower(rgs[0].Columns[0].MetaData.Codec.String())
		if s.compression == "uncompressed" {
			s.compression = "none"
		}
	}
	t := catalog.Type{Kind: catalog.KindStruct}
	for _, fld := range f.Schema().Fields() {
		t.Fields = append(t.Fields, catalog.Column{Name: fld.Name(), Type: parquetType(fld)})
	}
	s.schema = t
	if s.rows == 0 {
		s.unreadable = ""
	}
	return s, nil
}

// parquetType maps a Parquet schema node to the Hive type Glue would show.
func parquetType(n parquet.Node) catalog.Type {
	if !n.Leaf() {
		lt := n.Type().LogicalType()
		if lt != nil {
			if _, ok := lt.Value.(*format.ListType); ok && len(n.Fields()) == 1 {
				// LIST: group { repeated group list { element } }
				inner := n.Fields()[0]
				if !inner.Leaf() && len(inner.Fields()) == 1 {
					return catalog.ArrayOf(parquetType(inner.Fields()[0]))
				}
				return catalog.ArrayOf(parquetLeafOrGroup(inner))
			}
		}
		t := parquetLeafOrGroup(n)
		if n.Repeated() {
			return catalog.ArrayOf(t)
		}
		return t
	}
	t := parquetLeafOrGroup(n)
	if n.Repeated() {
		return catalog.ArrayOf(t)
	}
	return t
}

func parquetLeafOrGroup(n parquet.Node) catalog.Type {
	if !n.Leaf() {
		t := catalog.Type{Kind: catalog.KindStruct}
		for _, f := range n.Fields() {
			t.Fields = append(t.Fields, catalog.Column{Name: f.Name(), Type: parquetType(f)})
		}
		return t
	}
	typ := n.Type()
	if lt := typ.LogicalType(); lt != nil {
		switch lt.Value.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType, *format.UUIDType:
			return catalog.Prim(catalog.KindString)
		case *format.DateType:
			return catalog.Prim(catalog.KindDate)
		case *format.TimestampType:
			return catalog.Prim(catalog.KindTimestamp)
		case *format.DecimalType:
			return catalog.Prim(catalog.KindDouble)
		}
	}
	switch typ.Kind() {
	case parquet.Boolean:
		return catalog.Prim(catalog.KindBoolean)
	case parquet.Int32:
		return catalog.Prim(catalog.KindInt)
	case parquet.Int64:
		return catalog.Prim(catalog.KindBigint)
	case parquet.Int96:
		return catalog.Prim(catalog.KindTimestamp)
	case parquet.Float, parquet.Double:
		return catalog.Prim(catalog.KindDouble)
	case parquet.ByteArray:
		return catalog.Prim(catalog.KindString) // Glue shows unannotated BYTE_ARRAY as string too
	}
	return catalog.Prim(catalog.KindBinary)
}
