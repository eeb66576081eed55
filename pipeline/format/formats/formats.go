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
