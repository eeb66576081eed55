package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/civil"
	"sluice/pipeline/column"
	"sluice/pipeline/fault"
	"sluice/pipeline/mapper"
	"sluice/pipeline/reduce"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
)

// SchemaSummary is what a run did to the table's schema.
type SchemaSummary struct {
	Version int               `json:"version"` // the version the run wrote with
	Added   []string          `json:"added,omitempty"`
	Widened []schema.Widening `json:"widened,omitempty"`
	// Converted are the published partitions outside the rebuild whose
	// files were rewritten to the widened types, with their file count.
	Converted map[string]int `json:"converted,omitempty"`
	// Deferred names partitions whose conversion was left to a later
	// run, because another run of the job owns them now.
	Deferred []string `json:"deferred,omitempty"`
}

// reserveSchema merges the run's columns into the table's schema and
// stores the result before any file is written with it, so that every run
// that starts later writes with it too. A retried split task finds its
// own version and changes nothing.
func (s *Step) reserveSchema(ctx context.Context, mans []*mapper.Manifest) (schema.Schema, schema.Changes, []column.Collision, error) {
	runTypes := mapper.RunTypes(s.Spec, mans)
	var changes schema.Changes
	var coll []column.Collision
	sc, err := schema.NewStore(s.Out).Update(ctx, func(cur schema.Schema) (schema.Schema, bool, error) {
		next, ch, c, err := schema.Merge(cur, s.Spec, runTypes)
		if err != nil {
			return cur, false, fault.Permanent(err)
		}
		changes, coll = ch, c
		next.RunID = s.RunID
		return next, !ch.Empty(), nil
	})
	if err != nil {
		return sc, changes, coll, err
	}
	if changes.Empty() && sc.RunID == s.RunID {
		changes = sc.Changes
	}
	if !changes.Empty() {
		s.log().Info("table schema changed", "version", sc.Version, "added", changes.Added, "widened", changes.Widened)
	}
	return sc, changes, coll, nil
}

// conversion is a published partition to rewrite to the schema's types.
type conversion struct {
	Date  civil.Date           `json:"date"`
	Files []storage.ObjectInfo `json:"files"`
}

// planConversions finds the published Parquet partitions, outside this
// run's rebuild, with a file whose column types differ from sc's: they
// hold a type the schema has since widened. Their files are rewritten by
// reduce tasks (reduce.ConvertFile) and committed like rebuilt ones.
// When there is something to convert, the run first claims the table
// (ClaimTable): no other run of the job starts until this one ends, so no
// later rebuild of a partition races its conversion. Partitions inside the
// window of a run that was already running are that run's: they are left
// alone and reported in deferred (a later run converts them), and complete
// is false.
func (s *Step) planConversions(ctx context.Context, sc schema.Schema, p plan) (convs []conversion, deferred []string, err error) {
	files := map[civil.Date][]storage.ObjectInfo{}
	if s.Table != nil {
		// An Iceberg table's folders also hold files of earlier
		// snapshots: the current snapshot says which files are the table.
		files, err = s.icebergFiles(ctx)
	} else {
		err = s.Out.List(ctx, "year=", func(oi storage.ObjectInfo) error {
			if d, ok := partitionDate(oi.Key); ok && strings.HasSuffix(oi.Key, ".parquet") {
				files[d] = append(files[d], oi)
			}
			return nil
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("schema conversion: list the table: %w", err)
	}
	types := sc.Types()
	var mu sync.Mutex
	needs, vanished := map[civil.Date]bool{}, map[civil.Date]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, d := range slices.SortedFunc(maps.Keys(files), civil.Date.Compare) {
		if slices.Contains(p.Dates, d) {
			continue // rebuilt with the new types
		}
		for _, f := range files[d] {
			g.Go(func() error {
				cols, _, err := reduce.FileColumns(gctx, s.Spec, s.Out, f.Key, f.Size)
				if errors.Is(err, storage.ErrNotExist) {
					// Replaced since the listing: decided below.
					mu.Lock()
					vanished[d] = true
					mu.Unlock()
					return nil
				}
				if err != nil {
					return err
				}
				for _, c := range cols {
					if t, ok := types[c.Name]; ok && t != c.Type {
						mu.Lock()
						needs[d] = true
						mu.Unlock()
						return nil
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, fmt.Errorf("schema conversion: %w", err)
	}
	if len(needs) == 0 && len(vanished) == 0 {
		return nil, nil, nil
	}
	var others []civil.Window
	if s.ClaimTable != nil {
		if others, err = s.ClaimTable(ctx); err != nil {
			return nil, nil, fmt.Errorf("schema conversion: claim the table: %w", err)
		}
	}
	maps.Copy(needs, vanished)
	for _, d := range slices.SortedFunc(maps.Keys(needs), civil.Date.Compare) {
		if slices.ContainsFunc(others, func(w civil.Window) bool { return w.Contains(d) }) {
			deferred = append(deferred, d.String())
			continue
		}
		if vanished[d] {
			// Replaced by a run that has ended since: this listing is
			// stale, and the retry lists again.
			return nil, nil, fmt.Errorf("schema conversion: partition %s changed while it was planned; retrying", d)
		}
		convs = append(convs, conversion{Date: d, Files: files[d]})
	}
	return convs, deferred, nil
}

// partitionDate reads the date of a partition file's key
// (year=Y/month=M/date=YYYY-MM-DD/file).
func partitionDate(key string) (civil.Date, bool) {
	for _, seg := range strings.Split(key, "/") {
		if v, ok := strings.CutPrefix(seg, "date="); ok {
			d, err := civil.Parse(v)
			return d, err == nil
		}
	}
	return civil.Date{}, false
}

// markConverted records that every published file now holds the types of
// version v or wider.
func (s *Step) markConverted(ctx context.Context, v int) error {
	_, err := schema.NewStore(s.Out).Update(ctx, func(cur schema.Schema) (schema.Schema, bool, error) {
		if cur.Converted >= v {
			return cur, false, nil
		}
		cur.Converted = v
		return cur, true, nil
	})
	return err
}
