// Package formats is the registry of output file formats: the one place
// that knows them all, so that the job, the catalog and the config look a
// format up by the name a workflow gives it instead of comparing strings.
package formats

import (
	"fmt"
	"strings"

	"sluice/pipeline/format"
	"sluice/pipeline/format/csv"
	"sluice/pipeline/format/parquet"
)

// All are the output formats, the default first.
func All() []format.Format {
	return []format.Format{parquet.Format{}, csv.Format{}}
}

// ByName is the format called name.
func ByName(name string) (format.Format, error) {
	var names []string
	for _, f := range All() {
		if f.Name() == name {
			return f, nil
		}
		names = append(names, f.Name())
	}
	return nil, fmt.Errorf("%q is not %s", name, strings.Join(names, " or "))
}

// OutputVersion changes when a Sluice release changes what the job
// writes for the same input, so that bookmarks rebuild every partition
// (it is part of every job's spec id). Bump it when a format's bytes
// change: a new encoding, row group size or row order.
// Version 2: several files per partition, named part-NNNNN-<build>.
// Version 3: files assembled from fragments (row groups of about 64 MiB,
// Sluice's own column-chunk writer, rows by instant then key
// fingerprint).
const OutputVersion = "sluice-transform-3"
