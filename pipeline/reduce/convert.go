package reduce

import (
	"context"
	"fmt"
	"io"

	"sluice/pipeline/column"
	"sluice/pipeline/format"
	"sluice/pipeline/iocount"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// converter is the job's file format as a format.Converter: one whose
// files a schema widening rewrites.
func converter(spec transform.Spec) (format.Converter, error) {
	ff, err := spec.FileFormat()
	if err != nil {
		return nil, err
	}
	cv, ok := ff.(format.Converter)
	if !ok {
		return nil, fmt.Errorf("format %s: files are not converted", ff.Name())
	}
	return cv, nil
}

// FileColumns reads the columns of a published file of the job's format,
// in file order, and which of them are dictionary-encoded.
func FileColumns(ctx context.Context, spec transform.Spec, r storage.Reader, key string, size int64) ([]column.Column, []bool, error) {
	cv, err := converter(spec)
	if err != nil {
		return nil, nil, err
	}
	return cv.FileColumns(ctx, r, key, size)
}

// ConvertFile rewrites a published file (size bytes at key in r) with the
// column types of cols (format.Converter): what a schema widening does to
// the files already written. Row groups end at about opts.RowGroupBytes
// of values.
func ConvertFile(ctx context.Context, r storage.Reader, key string, size int64, spec transform.Spec, cols []column.Column, w io.Writer, opts Options) (FragmentStats, error) {
	var st FragmentStats
	cv, err := converter(spec)
	if err != nil {
		return st, err
	}
	groupBytes := opts.RowGroupBytes
	if groupBytes <= 0 {
		groupBytes = DefaultRowGroupBytes
	}
	cw := &iocount.Writer{W: w}
	st.Rows, err = cv.ConvertFile(ctx, r, key, size, spec.FormatOptions(), cols, cw, groupBytes)
	st.Bytes = cw.N
	return st, err
}
