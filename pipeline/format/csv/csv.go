// Package csv is the CSV output format: a header of column names, then
// one line per row, every column of the table in table order (readers
// match CSV columns by position), gzip-compressed or not.
package csv

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// Format is the CSV output format (format.Format).
type Format struct{}

var _ format.Format = Format{}

// Name is "csv".
func (Format) Name() string { return "csv" }

// Compressions are none (the default) and gzip.
func (Format) Compressions() []string { return []string{"none", "gzip"} }

// Ext is csv, or csv.gz when gzip-compressed.
func (Format) Ext(compression string) string {
	if compression == "gzip" {
		return "csv.gz"
	}
	return "csv"
}

// SplitsColumns is false: a row is one line.
func (Format) SplitsColumns() bool { return false }

// Positional is true: readers match CSV columns by position.
func (Format) Positional() bool { return true }

// Hive is the OpenCSV SerDe. Files start with a header line, which the
// catalog's table properties skip (skip.header.line.count).
func (Format) Hive(compression string) format.HiveStorage {
	s := format.HiveStorage{SerDe: "org.apache.hadoop.hive.serde2.OpenCSVSerde",
		InputFormat:  "org.apache.hadoop.mapred.TextInputFormat",
		OutputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
		SerDeParams:  map[string]string{"separatorChar": ",", "quoteChar": `"`, "escapeChar": `\`},
		Params:       map[string]string{"classification": "csv"}}
	if compression != "" && compression != "none" {
		s.Params["compressionType"] = compression
	}
	return s
}

// OutputRatio is about what gzip makes of Segment events' text, or the
// text's size when uncompressed.
func (Format) OutputRatio(compression string) float64 {
	if compression == "gzip" {
		return 0.15
	}
	return 0.9
}

// CSV renders timestamps as text a reader can parse without a zone: the
// local wall clock as "2006-01-02 15:04:05.000000", the instant with a Z.
const (
	csvLocalLayout = "2006-01-02 15:04:05.000000"
	csvUTCLayout   = "2006-01-02 15:04:05.000000Z"
)

// Encode writes the rows as CSV lines (one gzip member when compressed,
// so that fragments concatenate into one gzip file).
func (Format) Encode(w io.Writer, o format.Options, in format.Fragment, m format.Rows) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var gz *gzip.Writer
	var dst io.Writer = bw
	if o.Compression == "gzip" {
		// Each fragment is a gzip member of its own: members concatenate
		// into one valid gzip file.
		gz = gzip.NewWriter(bw)
		dst = gz
	}
	cw := csv.NewWriter(dst)
	cols := in.Columns
	rec := make([]string, len(cols))
	if in.Header {
		for i, c := range cols {
			rec[i] = c.Name
		}
		if err := cw.Write(rec); err != nil {
			return 0, err
		}
	}
	var rows int64
	for {
		row, err := m.Next()
		if err != nil {
			return rows, err
		}
		if row == nil {
			break
		}
		clear(rec)
		fr := intermediate.NewFields(row.Fields)
		for {
			c, kind, ok := fr.Next()
			if !ok {
				if err := fr.Err(); err != nil {
					return rows, err
				}
				break
			}
			if c < 0 || c >= len(cols) {
				return rows, intermediate.ErrCorrupt
			}
			switch kind {
			case intermediate.KindString:
				rec[c] = string(fr.Bytes())
			case intermediate.KindInt:
				rec[c] = strconv.FormatInt(fr.Int(), 10)
			case intermediate.KindDouble:
				rec[c] = strconv.FormatFloat(fr.Double(), 'g', -1, 64)
			case intermediate.KindBool:
				rec[c] = strconv.FormatBool(fr.Bool())
			default:
				return rows, intermediate.ErrCorrupt
			}
		}
		for c, col := range cols {
			switch col.Type {
			case column.TypeLocalTime:
				rec[c] = time.UnixMicro(row.US + row.Off*1_000_000).UTC().Format(csvLocalLayout)
			case column.TypeUTCTime:
				rec[c] = time.UnixMicro(row.US).UTC().Format(csvUTCLayout)
			}
		}
		if err := cw.Write(rec); err != nil {
			return rows, err
		}
		rows++
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return rows, err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return rows, err
		}
	}
	return rows, bw.Flush()
}

// Assemble concatenates a CSV file's fragments: each block is one
// fragment of every column.
func (Format) Assemble(ctx context.Context, r storage.Reader, o format.Options, blocks [][]format.FragmentRef) ([]storage.Section, error) {
	var out []storage.Section
	for i, block := range blocks {
		if len(block) != 1 {
			return nil, fmt.Errorf("csv: block %d has %d fragments, want 1", i, len(block))
		}
		out = append(out, storage.Section{Key: block[0].Key, Length: block[0].Size})
	}
	return out, nil
}
