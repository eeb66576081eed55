package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/storage"
)

// ErrNotFound is returned (wrapped) when a database or table does not exist.
var ErrNotFound = errors.New("not found")

// ErrVersionConflict is returned by PutTable when the caller's Version is not
// the stored one: someone changed the table since the caller read it.
var ErrVersionConflict = errors.New("table version conflict")

var validName = regexp.MustCompile(`^[a-z0-9_]+$`)

// Store reads and writes catalog documents in a bucket. It is safe for
// concurrent use.
type Store struct {
	b   storage.Bucket
	now func() time.Time

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per "db/table"
}

// New returns a Store keeping its documents in b.
func New(b storage.Bucket) *Store {
	return &Store{b: b, now: func() time.Time { return time.Now().UTC() }, locks: map[string]*sync.Mutex{}}
}

// Location is the URL of the catalog's bucket.
func (s *Store) Location() string { return s.b.Location() }

// ValidName reports whether name is usable as a database or table name:
// lower-case letters, digits and '_'.
func ValidName(name string) bool { return validName.MatchString(name) }

func (s *Store) tableLock(db, table string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := db + "/" + table
	l, ok := s.locks[k]
	if !ok {
		l = &sync.Mutex{}
		s.locks[k] = l
	}
	return l
}

func tableKey(db, table string) string { return db + "/" + table + "/table.json" }
func versionKey(db, table string, v int) string {
	return db + "/" + table + "/versions/" + strconv.Itoa(v) + ".json"
}
func partitionPrefix(db, table string) string { return db + "/" + table + "/partitions/" }

// partitionKey encodes each value as one path segment. QueryEscape makes
// '/', '=' and '%' safe; the empty value is "=" which no escaped value can be.
func partitionKey(db, table string, values []string) string {
	segs := make([]string, len(values))
	for i, v := range values {
		if v == "" {
			segs[i] = "="
		} else {
			segs[i] = url.QueryEscape(v)
		}
	}
	return partitionPrefix(db, table) + path.Join(segs...) + "/partition.json"
}

func (s *Store) getJSON(ctx context.Context, key string, v any) error {
	err := storage.ReadJSON(ctx, s.b, key, v)
	if errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return err
}

func encodeJSON(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	return append(data, '\n'), err
}

func (s *Store) putJSON(ctx context.Context, key string, v any) error {
	return storage.WriteJSON(ctx, s.b, key, v)
}

// PutDatabase creates or updates a database. CreatedAt is kept from the
// existing document.
func (s *Store) PutDatabase(ctx context.Context, d Database) error {
	if !ValidName(d.Name) {
		return fmt.Errorf("put database: invalid name %q", d.Name)
	}
	old, err := s.GetDatabase(ctx, d.Name)
	switch {
	case err == nil:
		d.CreatedAt = old.CreatedAt
		if old == d {
			return nil
		}
	case errors.Is(err, ErrNotFound):
		d.CreatedAt = s.now()
	default:
		return err
	}
	return s.putJSON(ctx, d.Name+"/database.json", d)
}

// GetDatabase reads a database; a missing one gives ErrNotFound.
func (s *Store) GetDatabase(ctx context.Context, name string) (Database, error) {
	var d Database
	err := s.getJSON(ctx, name+"/database.json", &d)
	return d, err
}

// ListDatabases returns the names of databases that have a database
// document or at least one table folder, sorted.
func (s *Store) ListDatabases(ctx context.Context) ([]string, error) {
	dirs, err := s.b.ListDirs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var out []string
	for _, d := range dirs {
		if n := strings.TrimSuffix(d, "/"); ValidName(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// GetTable reads the current definition of db.name.
func (s *Store) GetTable(ctx context.Context, db, name string) (Table, error) {
	var t Table
	if err := s.getJSON(ctx, tableKey(db, name), &t); err != nil {
		return Table{}, fmt.Errorf("table %s.%s: %w", db, name, err)
	}
	return t, nil
}

// ListTables returns every table of db, sorted by name.
func (s *Store) ListTables(ctx context.Context, db string) ([]Table, error) {
	dirs, err := s.b.ListDirs(ctx, db+"/")
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	var out []Table
	for _, d := range dirs {
		name := path.Base(strings.TrimSuffix(d, "/"))
		t, err := s.GetTable(ctx, db, name)
		if errors.Is(err, ErrNotFound) {
			continue // a folder left by a half-created table
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// PutTable stores t. If the schema (Table.SameSchema) changed, Version
// becomes the stored version + 1 and the new version is kept in the history;
// if only the location or conflicts changed the document is rewritten with
// the same version; if nothing changed nothing is written. A non-zero
// t.Version must equal the stored version (ErrVersionConflict otherwise),
// so read-modify-write callers notice a concurrent change. It returns the
// table as stored and whether anything was written.
func (s *Store) PutTable(ctx context.Context, t Table) (Table, bool, error) {
	return s.update(ctx, t.Database, t.Name, func(old Table) (Table, error) {
		if t.Version != 0 && t.Version != old.Version {
			return Table{}, fmt.Errorf("put table %s: have version %d, stored %d: %w",
				t.QualifiedName(), t.Version, old.Version, ErrVersionConflict)
		}
		return t, nil
	})
}

// UpdateTable reads db.name (a zero Table with Database and Name set when it
// does not exist yet), lets fn change it, and stores the result as PutTable
// does. When another writer (in this process or any other) changed the
// table in between, it reads it again and calls fn again, so concurrent
// updaters never lose each other's changes; fn must therefore not have side
// effects that cannot be repeated.
func (s *Store) UpdateTable(ctx context.Context, db, name string, fn func(t *Table) error) (Table, bool, error) {
	return s.update(ctx, db, name, func(old Table) (Table, error) {
		t := cloneTable(old)
		if err := fn(&t); err != nil {
			return Table{}, err
		}
		t.Database, t.Name = db, name
		return t, nil
	})
}

// maxAttempts bounds the optimistic retries of one table update; each
// failed attempt means another writer made progress.
const maxAttempts = 100

// update is the optimistic read-modify-write loop: read the table document
// and its ETag, compute the new table, write it only if the ETag is
// unchanged (storage.ConditionalPutter), else start over. A bucket without
// conditional puts gets last-writer-wins across processes; the in-process
// lock still serialises writers of one Store.
func (s *Store) update(ctx context.Context, db, name string, fn func(old Table) (Table, error)) (Table, bool, error) {
	if !ValidName(db) || !ValidName(name) {
		return Table{}, false, fmt.Errorf("table %q.%q: invalid name", db, name)
	}
	l := s.tableLock(db, name)
	l.Lock()
	defer l.Unlock()
	for attempt := 1; ; attempt++ {
		old, etag, exists, err := s.readTable(ctx, db, name)
		if err != nil {
			return Table{}, false, err
		}
		t, err := fn(old)
		if err != nil {
			return Table{}, false, err
		}
		stored, changed, err := s.write(ctx, t, old, exists, etag)
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return stored, changed, err
		}
		if attempt == maxAttempts {
			return Table{}, false, fmt.Errorf("update table %s.%s: %d attempts, other writers always won: %w", db, name, attempt, err)
		}
		// Someone else wrote the table: back off a little, with jitter so
		// the writers do not collide again in lockstep.
		d := time.Duration(rand.Int64N(int64(min(attempt, 20))*int64(2*time.Millisecond)) + 1)
		select {
		case <-ctx.Done():
			return Table{}, false, ctx.Err()
		case <-time.After(d):
		}
	}
}

// readTable returns the stored table and the ETag it was read at. The ETag
// is taken before the read, so a write in between makes the later
// conditional put fail rather than silently succeed.
func (s *Store) readTable(ctx context.Context, db, name string) (Table, string, bool, error) {
	key := tableKey(db, name)
	info, err := s.b.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotExist) {
		return Table{Database: db, Name: name}, "", false, nil
	}
	if err != nil {
		return Table{}, "", false, fmt.Errorf("table %s.%s: stat: %w", db, name, err)
	}
	var t Table
	if err := s.getJSON(ctx, key, &t); errors.Is(err, ErrNotFound) {
		// Deleted since the Stat: the conditional put will fail and retry.
		return Table{Database: db, Name: name}, info.ETag, false, nil
	} else if err != nil {
		return Table{}, "", false, fmt.Errorf("table %s.%s: %w", db, name, err)
	}
	return t, info.ETag, true, nil
}

// write stores t over old (read at etag). The table document is written
// first, conditionally; only the writer that won it writes the version
// document, so two writers can never both claim version n. A crash between
// the two leaves the current version without its history document, which
// History makes up from the table document.
func (s *Store) write(ctx context.Context, t, old Table, exists bool, etag string) (Table, bool, error) {
	switch {
	case !exists || !t.SameSchema(old):
		t.Version = old.Version + 1
	case !t.sameMetadata(old):
		t.Version = old.Version
	default:
		return old, false, nil
	}
	t.UpdatedAt = s.now()
	key := tableKey(t.Database, t.Name)
	if cp, ok := s.b.(storage.ConditionalPutter); ok {
		data, err := encodeJSON(t)
		if err != nil {
			return Table{}, false, fmt.Errorf("encode %s: %w", key, err)
		}
		if _, err := cp.PutIfMatch(ctx, key, bytes.NewReader(data), etag); err != nil {
			return Table{}, false, fmt.Errorf("put %s: %w", key, err)
		}
	} else if err := s.putJSON(ctx, key, t); err != nil {
		return Table{}, false, err
	}
	if t.Version != old.Version {
		if err := s.putJSON(ctx, versionKey(t.Database, t.Name, t.Version), t); err != nil {
			return Table{}, false, err
		}
	}
	return t, true, nil
}

func cloneTable(t Table) Table {
	t.Columns = append([]Column(nil), t.Columns...)
	t.PartitionKeys = append([]Column(nil), t.PartitionKeys...)
	t.Conflicts = append([]Conflict(nil), t.Conflicts...)
	t.Properties = maps.Clone(t.Properties)
	return t
}

// History returns every stored schema version of db.name, oldest first.
func (s *Store) History(ctx context.Context, db, name string) ([]Table, error) {
	prefix := db + "/" + name + "/versions/"
	var versions []int
	err := s.b.List(ctx, prefix, func(o storage.ObjectInfo) error {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(o.Key, prefix), ".json"))
		if err == nil {
			versions = append(versions, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of %s.%s: %w", db, name, err)
	}
	sort.Ints(versions)
	out := make([]Table, 0, len(versions)+1)
	for _, v := range versions {
		var t Table
		if err := s.getJSON(ctx, versionKey(db, name, v), &t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	// The current version's document is written after the table's; if a
	// writer died in between, the table document stands in for it.
	cur, err := s.GetTable(ctx, db, name)
	if err == nil && (len(out) == 0 || out[len(out)-1].Version < cur.Version) {
		out = append(out, cur)
	}
	return out, nil
}

// AddPartitions creates or updates partitions of db.table. A partition whose
// document is unchanged is not rewritten. It returns how many partitions
// did not exist before.
func (s *Store) AddPartitions(ctx context.Context, db, table string, parts []Partition) (int, error) {
	if !ValidName(db) || !ValidName(table) {
		return 0, fmt.Errorf("add partitions to %q.%q: invalid name", db, table)
	}
	added := make([]bool, len(parts))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, p := range parts {
		g.Go(func() error {
			key := partitionKey(db, table, p.Values)
			var old Partition
			err := s.getJSON(ctx, key, &old)
			switch {
			case errors.Is(err, ErrNotFound):
				added[i] = true
			case err != nil:
				return err
			case old.Same(p):
				return nil
			}
			p.UpdatedAt = s.now()
			return s.putJSON(ctx, key, p)
		})
	}
	err := g.Wait()
	n := 0
	for _, a := range added {
		if a {
			n++
		}
	}
	if err != nil {
		return n, fmt.Errorf("add partitions to %s.%s: %w", db, table, err)
	}
	return n, nil
}

// ListPartitions returns every partition of db.table, sorted by values.
func (s *Store) ListPartitions(ctx context.Context, db, table string) ([]Partition, error) {
	var keys []string
	err := s.b.List(ctx, partitionPrefix(db, table), func(o storage.ObjectInfo) error {
		if strings.HasSuffix(o.Key, "/partition.json") {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s.%s: %w", db, table, err)
	}
	out := make([]Partition, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, k := range keys {
		g.Go(func() error { return s.getJSON(gctx, k, &out[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("list partitions of %s.%s: %w", db, table, err)
	}
	sort.Slice(out, func(i, j int) bool { return lessValues(out[i].Values, out[j].Values) })
	return out, nil
}

func lessValues(a, b []string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
