package icetable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/cenkalti/backoff/v5"

	"sluice/pipeline/storage"
)

// Snapshot summary properties Sluice sets.
const (
	RunIDProperty = "sluice.run-id"
	StepProperty  = "sluice.step"
	DatesProperty = "sluice.dates"
)

// Table is a job's Iceberg table in its catalog. Every method loads the
// table afresh: several workers and runs commit to it.
type Table struct {
	cfg      Config
	ident    table.Identifier
	location string // the table's location: the job's output
	out      storage.Bucket
	cats     catalogs
	// beforeCompactionCommit, when set (by tests), runs between a
	// compaction's joins and its commit.
	beforeCompactionCommit func()
}

// Open returns the table cfg names, whose data and metadata live in out
// (the job's output location); ioProps configure iceberg-go's file IO
// for out (IOProperties). It reaches no catalog yet.
func Open(cfg Config, out storage.Bucket, ioProps map[string]string) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cats, err := openCatalogs(cfg, out, ioProps)
	if err != nil {
		return nil, err
	}
	return &Table{cfg: cfg, ident: table.Identifier{cfg.Namespace, cfg.Name}, location: strings.TrimRight(out.Location(), "/"), out: out, cats: cats}, nil
}

// Ident is the table's name in its catalog, namespace.name.
func (t *Table) Ident() string { return strings.Join(t.ident, ".") }

// Location is the table's location (the job's output).
func (t *Table) Location() string { return t.location }

// load returns the table, creating it (and its namespace) with cols when
// the catalog has none.
func (t *Table) load(ctx context.Context, cat catalog.Catalog, cols []Column) (*table.Table, error) {
	tbl, err := cat.LoadTable(ctx, t.ident)
	if err == nil {
		return tbl, nil
	}
	if !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("load table %s: %w", t.Ident(), err)
	}
	ns := table.Identifier{t.cfg.Namespace}
	if ok, err := cat.CheckNamespaceExists(ctx, ns); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", t.cfg.Namespace, err)
	} else if !ok {
		if err := cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			return nil, fmt.Errorf("create namespace %s: %w", t.cfg.Namespace, err)
		}
	}
	sc, err := newSchema(cols)
	if err != nil {
		return nil, err
	}
	spec := partitionSpec()
	tbl, err = cat.CreateTable(ctx, t.ident, sc,
		catalog.WithLocation(t.location),
		catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{
			"format-version": "2",
			// Sluice retries its own commits (Publish), deciding again
			// from the table it finds.
			table.CommitNumRetriesKey: "0",
			"write.format.default":    "parquet",
		}))
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		// Another writer created it since the load: go on with theirs.
		return cat.LoadTable(ctx, t.ident)
	}
	if err != nil {
		return nil, fmt.Errorf("create table %s at %s: %w", t.Ident(), t.location, err)
	}
	return tbl, nil
}

// EnsureColumns makes the table (creating it if need be) hold every
// column of cols, adding the new ones (a schema update: files written
// before read them as null), and returns every column's field id by name,
// the date column's included. Types are not changed here: a type change
// goes with the files that hold the new type, in Publish's snapshot.
func (t *Table) EnsureColumns(ctx context.Context, cols []Column) (map[string]int, error) {
	var ids map[string]int
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		tbl, err := t.load(ctx, cat, cols)
		if err != nil {
			return err
		}
		sc := tbl.Schema()
		var missing []Column
		for _, c := range cols {
			if _, ok := sc.FindFieldByName(c.Name); !ok {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			txn := tbl.NewTransaction()
			us := txn.UpdateSchema(true, false)
			for _, c := range missing {
				typ, err := icebergType(c.Type)
				if err != nil {
					return fmt.Errorf("column %q: %w", c.Name, err)
				}
				us.AddColumn([]string{c.Name}, typ, "", false, nil)
			}
			if err := us.Commit(); err != nil {
				return fmt.Errorf("add columns to %s: %w", t.Ident(), err)
			}
			if tbl, err = txn.Commit(ctx); err != nil {
				return fmt.Errorf("add columns to %s: %w", t.Ident(), err)
			}
			sc = tbl.Schema()
		}
		ids = map[string]int{}
		for _, f := range sc.Fields() {
			ids[f.Name] = f.ID
		}
		return nil
	})
	return ids, err
}

// Publication is one run's commit: the partitions it rebuilt and their
// new files.
type Publication struct {
	RunID, Step string
	// Columns are the table's columns now, in table order; a column whose
	// type is wider than the table's is changed in the same snapshot.
	Columns []Column
	// Dates are the partitions the run replaces, all of them, also those
	// that have no file now (their rows all went).
	Dates []string
	Files []DataFile
}

// Result is what Publish did.
type Result struct {
	SnapshotID int64
	// Landed is false when an earlier attempt of the run had already
	// committed: nothing was applied again.
	Landed   bool
	Attempts int
	Added    int // data files
	Removed  int
}

// Publish replaces every partition of p.Dates with p.Files in one
// snapshot whose summary names the run. When a snapshot of the table's
// history already names the run, its commit landed before (a retried
// task) and Publish returns it. A commit that loses a race with another
// writer is tried again on the table that writer left.
func (t *Table) Publish(ctx context.Context, p Publication) (Result, error) {
	var res Result
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		res.Attempts++
		tbl, err := t.load(ctx, cat, p.Columns)
		if err != nil {
			return err
		}
		if s := snapshotOfRun(tbl.Metadata(), p.RunID); s != nil {
			res.SnapshotID, res.Landed = s.SnapshotID, false
			return nil
		}
		txn := tbl.NewTransaction()
		if err := t.widen(txn, tbl.Schema(), p.Columns); err != nil {
			return err
		}
		old, err := t.partitionFiles(ctx, tbl, p.Dates)
		if err != nil {
			return err
		}
		spec := tbl.Spec()
		add := make([]iceberg.DataFile, len(p.Files))
		for i, f := range p.Files {
			if add[i], err = f.build(spec, t.location); err != nil {
				return err
			}
		}
		props := iceberg.Properties{RunIDProperty: p.RunID, StepProperty: p.Step, DatesProperty: strings.Join(p.Dates, ",")}
		switch {
		case len(old) > 0:
			err = txn.ReplaceDataFilesWithDataFiles(ctx, old, add, props)
		case len(add) > 0:
			err = txn.AddDataFiles(ctx, add, props)
		default:
			return nil // nothing was there and nothing is: no snapshot
		}
		if err != nil {
			return fmt.Errorf("stage the run's files: %w", err)
		}
		tbl, err = txn.Commit(ctx)
		if err != nil {
			return fmt.Errorf("commit to %s: %w", t.Ident(), err)
		}
		res.SnapshotID, res.Landed, res.Added, res.Removed = tbl.CurrentSnapshot().SnapshotID, true, len(add), len(old)
		return nil
	})
	return res, err
}

// widen changes the type of every column whose type cols widened. Iceberg
// reads int as long and float as double without a rewrite; Sluice's
// widenings (bigint to double, anything to string) are not among those,
// so the job rewrites the files that held the narrower type and they
// replace the old ones in this same snapshot: no snapshot has a file of
// the old type under the new schema.
func (t *Table) widen(txn *table.Transaction, sc *iceberg.Schema, cols []Column) error {
	var us *table.UpdateSchema
	for _, c := range cols {
		f, ok := sc.FindFieldByName(c.Name)
		if !ok {
			return fmt.Errorf("column %q is not in table %s: add it (EnsureColumns) before its files are written", c.Name, t.Ident())
		}
		typ, err := icebergType(c.Type)
		if err != nil {
			return err
		}
		if !wider(f.Type, typ) {
			continue // the same, or the table's is wider already
		}
		if us == nil {
			us = txn.UpdateSchema(true, true)
		}
		us.UpdateColumn([]string{c.Name}, table.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Valid: true, Val: typ}})
	}
	if us == nil {
		return nil
	}
	if err := us.Commit(); err != nil {
		return fmt.Errorf("change column types of %s: %w", t.Ident(), err)
	}
	return nil
}

// partitionFiles lists the data files of the current snapshot in the
// given partitions (pruned by the manifests' partition summaries).
func (t *Table) partitionFiles(ctx context.Context, tbl *table.Table, dates []string) ([]iceberg.DataFile, error) {
	if tbl.CurrentSnapshot() == nil || len(dates) == 0 {
		return nil, nil
	}
	tasks, err := tbl.Scan(table.WithRowFilter(iceberg.IsIn(iceberg.Reference(DateColumn), dates...))).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the files of the rebuilt partitions: %w", err)
	}
	want := map[string]bool{}
	for _, d := range dates {
		want[d] = true
	}
	var files []iceberg.DataFile
	for _, task := range tasks {
		// The scan keeps files whose bounds might match; the partition
		// value says for sure.
		if d, ok := task.File.Partition()[partitionFieldID].(string); ok && want[d] {
			files = append(files, task.File)
		}
	}
	return files, nil
}

// snapshotOfRun is the snapshot whose summary names run, if the table's
// history has one.
func snapshotOfRun(md table.Metadata, run string) *table.Snapshot {
	return snapshotWith(md, RunIDProperty, run)
}

// snapshotWith is the first snapshot whose summary sets property to
// value, if the table's history has one.
func snapshotWith(md table.Metadata, property, value string) *table.Snapshot {
	for _, s := range md.Snapshots() {
		if s.Summary != nil && s.Summary.Properties[property] == value {
			return &s
		}
	}
	return nil
}

// retryConflicts runs fn again while it fails with table.ErrCommitFailed
// (another writer committed first), with backoff, a few times.
func retryConflicts(ctx context.Context, fn func() error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := fn()
		if err != nil && !errors.Is(err, table.ErrCommitFailed) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxTries(maxCatalogAttempts), backoff.WithMaxElapsedTime(2*time.Minute))
	return err
}

// SnapshotInfo is one snapshot of the table's history.
type SnapshotInfo struct {
	ID        int64     `json:"id"`
	ParentID  int64     `json:"parent_id,omitempty"`
	At        time.Time `json:"at"`
	Operation string    `json:"operation"`
	RunID     string    `json:"run_id,omitempty"`
	// Compaction names the compaction that committed the snapshot.
	Compaction string            `json:"compaction,omitempty"`
	Current    bool              `json:"current,omitempty"`
	Summary    map[string]string `json:"summary,omitempty"`
}

// Snapshots lists the table's snapshots, oldest first.
func (t *Table) Snapshots(ctx context.Context) ([]SnapshotInfo, error) {
	var out []SnapshotInfo
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		out = out[:0]
		var cur int64 = -1
		if s := tbl.CurrentSnapshot(); s != nil {
			cur = s.SnapshotID
		}
		for _, s := range tbl.Metadata().Snapshots() {
			si := SnapshotInfo{ID: s.SnapshotID, At: time.UnixMilli(s.TimestampMs).UTC(), Current: s.SnapshotID == cur}
			if s.ParentSnapshotID != nil {
				si.ParentID = *s.ParentSnapshotID
			}
			if s.Summary != nil {
				si.Operation = string(s.Summary.Operation)
				si.RunID = s.Summary.Properties[RunIDProperty]
				si.Compaction = s.Summary.Properties[CompactionProperty]
				si.Summary = s.Summary.Properties
			}
			out = append(out, si)
		}
		slices.SortFunc(out, func(a, b SnapshotInfo) int { return a.At.Compare(b.At) })
		return nil
	})
	return out, err
}

// RunDates are the partitions the snapshot of run replaced (none when the
// run committed no snapshot, or it expired).
func (t *Table) RunDates(ctx context.Context, run string) ([]string, error) {
	snaps, err := t.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if s.RunID == run && s.Summary[DatesProperty] != "" {
			return strings.Split(s.Summary[DatesProperty], ","), nil
		}
	}
	return nil, nil
}

// RollbackRun makes the snapshot before the one run committed the
// table's current snapshot again (the run's commit is undone; later runs'
// commits too, when there are any: Iceberg rolls back, it does not
// revert). It returns the snapshot now current.
func (t *Table) RollbackRun(ctx context.Context, run string) (int64, error) {
	var to int64
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		s := snapshotOfRun(tbl.Metadata(), run)
		if s == nil {
			return fmt.Errorf("no snapshot of table %s names run %s (expired, or the run committed nothing)", t.Ident(), run)
		}
		if s.ParentSnapshotID == nil {
			return fmt.Errorf("run %s made the first snapshot of table %s: there is none before it", run, t.Ident())
		}
		to = *s.ParentSnapshotID
		return t.rollback(ctx, tbl, to)
	})
	return to, err
}

// Rollback makes snapshot id the current one.
func (t *Table) Rollback(ctx context.Context, id int64) error {
	return t.cats.with(ctx, func(cat catalog.Catalog) error {
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		return t.rollback(ctx, tbl, id)
	})
}

func (t *Table) rollback(ctx context.Context, tbl *table.Table, id int64) error {
	if s := tbl.CurrentSnapshot(); s != nil && s.SnapshotID == id {
		return nil
	}
	txn := tbl.NewTransaction()
	if err := txn.RollbackToSnapshot(id); err != nil {
		return fmt.Errorf("roll table %s back to snapshot %d: %w", t.Ident(), id, err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		return fmt.Errorf("roll table %s back to snapshot %d: %w", t.Ident(), id, err)
	}
	return nil
}

// Expire drops the snapshots older than the table's SnapshotMaxAge (but
// the newest RetainLast) and deletes the manifests and data files only
// they referenced. It returns how many snapshots went. With no
// SnapshotMaxAge it does nothing.
func (t *Table) Expire(ctx context.Context) (int, error) {
	if t.cfg.SnapshotMaxAge <= 0 {
		return 0, nil
	}
	var n int
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		tbl, err := cat.LoadTable(ctx, t.ident)
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		before := len(tbl.Metadata().Snapshots())
		txn := tbl.NewTransaction()
		if err := txn.ExpireSnapshots(table.WithOlderThan(t.cfg.SnapshotMaxAge), table.WithRetainLast(t.cfg.RetainLast)); err != nil {
			return fmt.Errorf("expire snapshots of %s: %w", t.Ident(), err)
		}
		after, err := txn.Commit(ctx)
		if err != nil {
			return fmt.Errorf("expire snapshots of %s: %w", t.Ident(), err)
		}
		n = before - len(after.Metadata().Snapshots())
		return nil
	})
	return n, err
}

// Load returns the table as its catalog has it now, for reading (a scan,
// time travel). It fails when the table does not exist.
func (t *Table) Load(ctx context.Context) (*table.Table, error) {
	var tbl *table.Table
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		var err error
		tbl, err = cat.LoadTable(ctx, t.ident)
		return err
	})
	return tbl, err
}

// wider tells whether to is a widening of from that Sluice makes: long to
// double, and anything to string.
func wider(from, to iceberg.Type) bool {
	switch {
	case from.Equals(to):
		return false
	case to.Equals(iceberg.PrimitiveTypes.String):
		return true
	case to.Equals(iceberg.PrimitiveTypes.Float64):
		return from.Equals(iceberg.PrimitiveTypes.Int64)
	}
	return false
}

// FileRef is one data file of the current snapshot.
type FileRef struct {
	Key  string // in the output location
	Date string
	Size int64
	Rows int64
}

// Files lists the data files of the current snapshot (none when the
// table does not exist yet).
func (t *Table) Files(ctx context.Context) ([]FileRef, error) {
	var out []FileRef
	err := t.cats.with(ctx, func(cat catalog.Catalog) error {
		out = out[:0]
		tbl, err := cat.LoadTable(ctx, t.ident)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		if tbl.CurrentSnapshot() == nil {
			return nil
		}
		tasks, err := tbl.Scan().PlanFiles(ctx)
		if err != nil {
			return fmt.Errorf("list the files of %s: %w", t.Ident(), err)
		}
		for _, task := range tasks {
			key, ok := strings.CutPrefix(task.File.FilePath(), t.location+"/")
			if !ok {
				return fmt.Errorf("file %s of table %s is outside its location %s", task.File.FilePath(), t.Ident(), t.location)
			}
			d, _ := task.File.Partition()[partitionFieldID].(string)
			out = append(out, FileRef{Key: key, Date: d, Size: task.File.FileSizeBytes(), Rows: task.File.Count()})
		}
		return nil
	})
	return out, err
}

// DefaultOrphanAge is how old a file of the partition folders must be,
// referenced by no snapshot, before RemoveOrphans deletes it: longer than
// any run takes from its first assembled file to its commit.
const DefaultOrphanAge = 72 * time.Hour

// RemoveOrphans deletes the files of the partition folders (year=...)
// that no snapshot references and that are older than age: the files a
// run assembled for a commit that never landed. It looks only below
// year=, never at the table's metadata or Sluice's own _sluice/ and
// _errors/ folders. It returns the keys it deleted.
func (t *Table) RemoveOrphans(ctx context.Context, age time.Duration) ([]string, error) {
	dirs, err := t.out.ListDirs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.location, err)
	}
	var deleted []string
	err = t.cats.with(ctx, func(cat catalog.Catalog) error {
		deleted = deleted[:0]
		tbl, err := cat.LoadTable(ctx, t.ident)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load table %s: %w", t.Ident(), err)
		}
		for _, d := range dirs {
			if !strings.HasPrefix(d, "year=") {
				continue
			}
			res, err := tbl.DeleteOrphanFiles(ctx, table.WithLocation(t.location+"/"+strings.TrimSuffix(d, "/")), table.WithFilesOlderThan(age))
			if err != nil {
				return fmt.Errorf("remove orphan files of %s below %s: %w", t.Ident(), d, err)
			}
			for _, p := range res.DeletedFiles {
				deleted = append(deleted, t.keyOf(p))
			}
		}
		return nil
	})
	return deleted, err
}

// keyOf is the key in the output of a file path iceberg-go gives (a local
// one comes without its file:// scheme).
func (t *Table) keyOf(p string) string {
	if k, ok := strings.CutPrefix(p, t.location+"/"); ok {
		return k
	}
	return strings.TrimPrefix(p, strings.TrimPrefix(t.location, "file://")+"/")
}
