package mapper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sluice/pipeline/civil"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

// The files of a mapped shard, in its folder of the scratch bucket.
const (
	manifestName    = "manifest.json"
	QuarantineFile  = "quarantine.ndjson.gz"
	manifestVersion = 2
)

func rowsName(d civil.Date) string { return "date=" + d.String() + ".rows" }
func idsName(d civil.Date) string  { return "date=" + d.String() + ".ids" }

// Manifest is the commit marker and summary of one mapped shard: a
// shard is mapped when its manifest exists.
type Manifest struct {
	Version int          `json:"version"`
	Shard   int          `json:"shard"`
	Codec   string       `json:"codec"` // of the intermediates (intermediate.CodecNone or CodecS2)
	Window  civil.Window `json:"window"`
	// Paths are the shard's column ids: Paths[id] is the source path
	// (segments joined with ".") of the fields with that id.
	Paths []string `json:"paths"`
	Stats Stats    `json:"stats"`
	// Dates are the local dates that got rows, in order.
	Dates []DateFiles `json:"dates"`
	// Quarantine names the shard's quarantined lines (gzip NDJSON of
	// QuarantineRecord) in its folder; empty when none were.
	Quarantine string `json:"quarantine,omitempty"`
}

// DateFiles are one date's intermediates of a shard.
type DateFiles struct {
	Date  civil.Date `json:"date"`
	Rows  int64      `json:"rows"`
	Bytes int64      `json:"bytes"` // of row records, uncompressed
	// Kinds[id] is the bit mask of the field kinds column id held on this
	// date (0: the column did not occur).
	Kinds     []uint8            `json:"kinds"`
	RowsFile  string             `json:"rows_file"`
	IDsFile   string             `json:"ids_file"`
	RowsIndex intermediate.Index `json:"rows_index"`
	IDsIndex  intermediate.Index `json:"ids_index"`
}

// ReadManifest reads the manifest of the shard mapped into dir.
func ReadManifest(ctx context.Context, scratch storage.Reader, dir string, shard int) (*Manifest, error) {
	var m Manifest
	err := storage.ReadJSON(ctx, scratch, normPrefix(dir)+manifestName, &m)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("shard %d is not mapped: %w", shard, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of shard %d: %w", shard, err)
	}
	if m.Version != manifestVersion || m.Shard != shard {
		return nil, fmt.Errorf("manifest of shard %d: unexpected version %d or shard %d", shard, m.Version, m.Shard)
	}
	return &m, nil
}

// Date returns the shard's files of date d, or nil.
func (m *Manifest) Date(d civil.Date) *DateFiles {
	for i := range m.Dates {
		if m.Dates[i].Date == d {
			return &m.Dates[i]
		}
	}
	return nil
}

// normPrefix makes a prefix usable as a folder ("" stays "").
func normPrefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}
