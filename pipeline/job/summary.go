package job

import (
	"fmt"
	"slices"

	"sluice/pipeline/column"
)

// Summary is what a job step records in its run: what it read, what it
// wrote, and the reconciliation of every input line.
type Summary struct {
	Shards     int   `json:"shards"`
	ShardBytes int64 `json:"shard_bytes,omitempty"` // the size the input was cut at
	Slots      int   `json:"slots,omitempty"`       // transform slots of the live fleet when planned
	// InputObjects and InputBytesCompressed are what the map read;
	// InputBytes is the same uncompressed.
	InputObjects         int   `json:"input_objects"`
	InputBytesCompressed int64 `json:"input_bytes_compressed"`
	InputBytes           int64 `json:"input_bytes"`
	LinesRead            int64 `json:"lines_read"`
	RowsWritten          int64 `json:"rows_written"`
	Duplicates           int64 `json:"duplicates"`
	OutsideWindow        int64 `json:"outside_window"`
	// FilteredOut are the rows the job's where left out.
	FilteredOut int64 `json:"filtered_out,omitempty"`
	// RepairedUTF8 counts lines whose bytes that are not UTF-8 were
	// replaced by U+FFFD (they are read as usual, so also counted above).
	RepairedUTF8 int64            `json:"repaired_utf8,omitempty"`
	Quarantined  map[string]int64 `json:"quarantined"`
	// QuarantineDir is the output folder of this run's quarantined lines
	// (with their source object, line number and reason), when any were.
	QuarantineDir string `json:"quarantine_dir,omitempty"`
	// Partitions are the rows of each rebuilt partition, Files its files.
	Partitions  map[string]int64 `json:"partitions"`
	Files       map[string]int   `json:"files"`
	OutputBytes int64            `json:"output_bytes"`
	// Rebuilt says why each partition was rebuilt; Skipped lists those
	// whose input was unchanged, and SkippedRows the rows read for them
	// (objects that also feed a rebuilt partition) and not written.
	Rebuilt     map[string]string `json:"rebuilt,omitempty"`
	Skipped     []string          `json:"skipped,omitempty"`
	SkippedRows int64             `json:"skipped_rows,omitempty"`
	// SpilledPartitions had a file whose rows did not fit the reduce's
	// memory budget and were sorted on local disk (same output, slower).
	SpilledPartitions []string `json:"spilled_partitions,omitempty"`
	// Removed are the files of earlier builds the commits deleted.
	Removed int `json:"removed_files,omitempty"`
	// Schema is what the run did to the table's schema: the version it
	// wrote with, the columns it added and widened, and the published
	// partitions it converted to the widened types.
	Schema *SchemaSummary `json:"schema,omitempty"`
	// Layout is how each date's work was cut: files, row groups, reduce
	// tasks (slices) and encode tasks (fragments); it names the step's
	// tasks and lets `scheduler replay` rebuild its task graph.
	Layout []DateLayout `json:"layout,omitempty"`
	// Iceberg is the snapshot the run committed, when the job writes an
	// Iceberg table.
	Iceberg *IcebergSummary `json:"iceberg,omitempty"`
	// Collisions are source fields renamed because another field already
	// maps to their column name.
	Collisions     []column.Collision `json:"collisions,omitempty"`
	Reconciliation string             `json:"reconciliation"`
	Balanced       bool               `json:"balanced"`
}

// reconcile checks the books: every line read is a row written, a
// duplicate, outside the window, filtered out by the job's where,
// quarantined, or a row of a partition that was not rebuilt.
func (s *Summary) reconcile() {
	var quarantined int64
	for _, n := range s.Quarantined {
		quarantined += n
	}
	accounted := s.RowsWritten + s.Duplicates + s.OutsideWindow + s.FilteredOut + quarantined + s.SkippedRows
	s.Balanced = accounted == s.LinesRead
	filtered := ""
	if s.FilteredOut > 0 {
		filtered = fmt.Sprintf(" + filtered out %d", s.FilteredOut)
	}
	s.Reconciliation = fmt.Sprintf("lines read %d = rows written %d + duplicates %d + outside window %d%s + quarantined %d + rows of unchanged partitions %d (%d)",
		s.LinesRead, s.RowsWritten, s.Duplicates, s.OutsideWindow, filtered, quarantined, s.SkippedRows, accounted)
}

func (s *Summary) addCollisions(cs []column.Collision) {
	for _, c := range cs {
		if !slices.Contains(s.Collisions, c) {
			s.Collisions = append(s.Collisions, c)
		}
	}
}

// DateLayout is how one date's partition was built: Files files, whose
// row groups were each reduced by Slices[i] tasks (slices) and encoded by
// ColumnGroups tasks (fragments, one per column group); a schema
// conversion has Converted files, one encode task each, and no slices.
type DateLayout struct {
	Date         string `json:"date"`
	Files        int    `json:"files"`
	Slices       []int  `json:"slices_per_row_group,omitempty"`
	ColumnGroups int    `json:"column_groups,omitempty"`
	Converted    int    `json:"converted_files,omitempty"`
}

// ReduceTasks is the number of the date's reduce tasks.
func (l DateLayout) ReduceTasks() int {
	n := 0
	for _, s := range l.Slices {
		n += s
	}
	return n
}

// EncodeTasks is the number of the date's encode tasks.
func (l DateLayout) EncodeTasks() int {
	if l.Converted > 0 {
		return l.Converted
	}
	return len(l.Slices) * l.ColumnGroups
}

// layoutOf is the layout of a split.
func layoutOf(sp *split) []DateLayout {
	var out []DateLayout
	for _, ds := range sp.Dates {
		l := DateLayout{Date: ds.Date.String(), Files: ds.Files, ColumnGroups: len(ds.Groups)}
		for _, rg := range ds.RowGroups {
			l.Slices = append(l.Slices, rg.Slices[1]-rg.Slices[0])
		}
		out = append(out, l)
	}
	for _, ds := range sp.Converts {
		out = append(out, DateLayout{Date: ds.Date.String(), Files: ds.Files, Converted: len(ds.ConvertFiles)})
	}
	return out
}
