package mapper

import (
	"maps"
	"slices"

	"sluice/pipeline/civil"
)

// Quarantine reasons.
const (
	ReasonInvalidJSON      = "invalid_json"
	ReasonNotObject        = "not_object"
	ReasonMissingKey       = "missing_key"
	ReasonEmptyKey         = "empty_key"
	ReasonBadKey           = "bad_key" // key present but not a string
	ReasonMissingTimestamp = "missing_timestamp"
	ReasonBadTimestamp     = "bad_timestamp"
	ReasonLineTooLong      = "line_too_long"
	ReasonCorruptObject    = "corrupt_object"   // not gzip, or the stream breaks off
	ReasonTypeMismatch     = "type_mismatch"    // a value its pinned column type cannot hold (transform.Spec.Columns)
	ReasonExpressionError  = "expression_error" // a where or derive expression failed (pipeline/expr)
)

// MaxLineBytes is the longest line MapShard parses; longer lines are
// quarantined (with their first QuarantineRawBytes bytes).
const MaxLineBytes = 32 << 20

// QuarantineRawBytes caps the raw text kept for an over-long line.
const QuarantineRawBytes = 64 << 10

// Stats summarises one mapped shard.
type Stats struct {
	Shard         int                  `json:"shard"`
	Objects       int                  `json:"objects"`
	LinesRead     int64                `json:"lines_read"` // non-blank lines (plus one per corrupt object)
	Rows          map[civil.Date]int64 `json:"rows"`       // rows written per local date, before dedupe
	OutsideWindow int64                `json:"outside_window"`
	// FilteredOut counts the rows the job's where left out.
	FilteredOut int64 `json:"filtered_out,omitempty"`
	// RepairedUTF8 counts the lines that held bytes which are not UTF-8:
	// each such byte was replaced by U+FFFD (see repairUTF8) and the line
	// read as usual.
	RepairedUTF8      int64            `json:"repaired_utf8,omitempty"`
	Quarantined       map[string]int64 `json:"quarantined"` // by reason
	BytesCompressed   int64            `json:"bytes_compressed"`
	BytesUncompressed int64            `json:"bytes_uncompressed"`
	// ObjectDates lists, per object key, the local dates of its valid
	// events, inside the window or not. Bookmarks use it to know which
	// partitions an object feeds (see pipeline/bookmark).
	ObjectDates map[string][]civil.Date `json:"object_dates,omitempty"`
}

// RowsTotal is the sum of Rows.
func (s Stats) RowsTotal() int64 {
	var n int64
	for _, v := range s.Rows {
		n += v
	}
	return n
}

// QuarantinedTotal is the sum of Quarantined.
func (s Stats) QuarantinedTotal() int64 {
	var n int64
	for _, v := range s.Quarantined {
		n += v
	}
	return n
}

// Dates lists the dates that got rows, in order.
func (s Stats) Dates() []civil.Date {
	ds := slices.Collect(maps.Keys(s.Rows))
	slices.SortFunc(ds, civil.Date.Compare)
	return ds
}

// Add accumulates o into s (Shard is left alone).
func (s *Stats) Add(o Stats) {
	s.Objects += o.Objects
	s.LinesRead += o.LinesRead
	s.OutsideWindow += o.OutsideWindow
	s.FilteredOut += o.FilteredOut
	s.RepairedUTF8 += o.RepairedUTF8
	s.BytesCompressed += o.BytesCompressed
	s.BytesUncompressed += o.BytesUncompressed
	if s.Rows == nil {
		s.Rows = map[civil.Date]int64{}
	}
	for d, n := range o.Rows {
		s.Rows[d] += n
	}
	if s.Quarantined == nil {
		s.Quarantined = map[string]int64{}
	}
	if len(o.ObjectDates) > 0 && s.ObjectDates == nil {
		s.ObjectDates = map[string][]civil.Date{}
	}
	for k, ds := range o.ObjectDates {
		s.ObjectDates[k] = ds
	}
	for r, n := range o.Quarantined {
		s.Quarantined[r] += n
	}
}

// QuarantineRecord is one line of the quarantine (NDJSON).
type QuarantineRecord struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Line   int64  `json:"line"` // 1-based physical line in the decompressed object; 0 for the object itself
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	Raw    string `json:"raw"`
	// RawBase64 is the line's exact bytes when they are not UTF-8 (Raw,
	// a JSON string, then holds U+FFFD in their place).
	RawBase64 string `json:"raw_base64,omitempty"`
}
