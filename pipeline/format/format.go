// Package format is what the job needs of an output file format: a
// Format, looked up by the name a workflow gives it (pipeline/format/formats),
// encodes fragments of a date's rows and assembles them into files, and
// tells the planner and the catalog what they need to know of its files.
// Each format is a package of its own (format/parquet, format/csv); adding
// one is a package implementing Format and a line in formats.All.
package format

import (
	"context"
	"io"

	"sluice/pipeline/column"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// Format is one kind of output file: how its fragments are encoded and
// assembled into a file, and what the job and the catalog need to plan for
// it and to declare it.
type Format interface {
	// Name is the format's name in workflows, the catalog and DDL
	// (lower case: "parquet").
	Name() string
	// Compressions are the compressions the format takes, the default
	// first.
	Compressions() []string
	// Ext is the extension of the files written with compression, without
	// the dot.
	Ext(compression string) string
	// SplitsColumns tells whether several tasks may encode the columns
	// of one row group (Parquet, whose column chunks stand alone; not
	// CSV, whose row is one line).
	SplitsColumns() bool
	// Positional tells whether readers match a file's columns by position
	// (CSV) rather than by name (Parquet): then every file holds every
	// column of the table, in table order, and files are not rewritten
	// when a column's type widens (text reads as the wider type as it is).
	Positional() bool
	// OutputRatio estimates output bytes per byte of row records, for a
	// first build (later builds use the ratio their partitions measured).
	OutputRatio(compression string) float64
	// Encode writes the rows (sorted records whose fields are numbered by
	// column of in.Columns) as one fragment of a file, and returns how
	// many rows it wrote.
	Encode(w io.Writer, o Options, in Fragment, rows Rows) (int64, error)
	// Assemble returns the sections (storage.Compose) of a file made of
	// fragments: blocks of rows in order, each the fragments of its
	// column groups in column order.
	Assemble(ctx context.Context, r storage.Reader, o Options, blocks [][]FragmentRef) ([]storage.Section, error)
	// Hive is how Hive, Athena and Glue read the format's files.
	Hive(compression string) HiveStorage
}

// Options are what a job says of its files beyond their columns.
type Options struct {
	Compression string // one of the format's Compressions ("" for the default)
	TimeZone    string // of the local timestamp column's wall clock
}

// Fragment is what one encode task writes: rows of the date's Columns,
// of which it holds [From, To) (one column group; every column for a
// format that does not split columns).
type Fragment struct {
	Columns []column.Column `json:"columns"`
	From    int             `json:"from"`
	To      int             `json:"to"`
	// Rows, and per column of the group Values and StringBytes, are what
	// the rows hold, to size the columns up front.
	Rows        int64   `json:"rows"`
	Values      []int64 `json:"values"`
	StringBytes []int64 `json:"string_bytes"`
	// Header is set on the first fragment of a CSV file, which starts
	// with the column names.
	Header bool `json:"header,omitempty"`
}

// Rows yields sorted records (intermediate.SortedRow) in output order;
// Next returns nil at the end, and a row is valid until the next call.
type Rows interface {
	Next() (*intermediate.SortedRow, error)
}

// FragmentRef names a written fragment.
type FragmentRef struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// HiveStorage is what Athena's ROW FORMAT / STORED AS and Glue's
// StorageDescriptor say of a format's files.
type HiveStorage struct {
	SerDe        string
	SerDeParams  map[string]string
	InputFormat  string
	OutputFormat string
	Params       map[string]string // table properties
}

// Converter is a format whose files can be rewritten to a wider schema:
// what a schema widening does to the files already written, when readers
// match columns by name and check their types (Parquet).
type Converter interface {
	// FileColumns reads the columns of the file at key (size bytes), in
	// file order, and which of them are dictionary-encoded.
	FileColumns(ctx context.Context, r storage.Reader, key string, size int64) ([]column.Column, []bool, error)
	// ConvertFile rewrites the file at key with its columns typed as
	// cols says (cols holds every column of the table), in row groups of
	// about rowGroupBytes of values, and returns the rows written.
	ConvertFile(ctx context.Context, r storage.Reader, key string, size int64, o Options, cols []column.Column, w io.Writer, rowGroupBytes int64) (int64, error)
}

// Compression is compression, or the format's default when it is empty.
func Compression(f Format, compression string) string {
	if compression == "" {
		return f.Compressions()[0]
	}
	return compression
}
