package icetable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/glue" // registers "glue"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers "rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// warehouses
	"github.com/apache/iceberg-go/table"
	"github.com/aws/smithy-go"
	_ "modernc.org/sqlite" // the embedded catalog's database, in pure Go

	"sluice/pipeline/storage"
)

// CatalogKey is where the embedded catalog's SQLite file lives in the
// output location: under _sluice/, which readers of the table ignore.
const CatalogKey = "_sluice/iceberg/catalog.db"

// maxCatalogAttempts bounds the retries of one change that keeps losing
// the race for the catalog to other writers.
const maxCatalogAttempts = 8

// catalogs runs a change against the table's catalog: fn gets a catalog
// and may commit to it; when another writer changed the catalog
// meanwhile, fn's changes are refused (table.ErrCommitFailed, or the
// embedded catalog's lost conditional put) and fn runs again on the new
// state, so fn must decide what to do from what it loads.
type catalogs interface {
	with(ctx context.Context, fn func(catalog.Catalog) error) error
}

func openCatalogs(cfg Config, out storage.Bucket, ioProps map[string]string) (catalogs, error) {
	props := iceberg.Properties{}
	for k, v := range ioProps {
		props[k] = v
	}
	for k, v := range cfg.Catalog.Properties {
		props[k] = v
	}
	switch cfg.Catalog.Type {
	case CatalogEmbedded:
		cp, ok := out.(storage.ConditionalPutter)
		if !ok {
			return nil, fmt.Errorf("table.catalog: the embedded catalog needs an output that can replace an object conditionally; %s cannot", out.Location())
		}
		props["warehouse"] = out.Location()
		return &embedded{out: out, cp: cp, props: props}, nil
	case CatalogGlue, CatalogREST:
		props["type"] = cfg.Catalog.Type
		if cfg.Catalog.URI != "" {
			props["uri"] = cfg.Catalog.URI
		}
		if cfg.Catalog.Warehouse != "" {
			props["warehouse"] = cfg.Catalog.Warehouse
		}
		return &remote{name: "sluice", props: props}, nil
	}
	return nil, fmt.Errorf("table.catalog.type: %q is not embedded, glue or rest", cfg.Catalog.Type)
}

// remote is a catalog served by someone else (Glue, REST): it arbitrates
// commits itself.
type remote struct {
	name  string
	props iceberg.Properties
}

func (r *remote) with(ctx context.Context, fn func(catalog.Catalog) error) error {
	cat, err := catalog.Load(ctx, r.name, r.props)
	if err != nil {
		return fmt.Errorf("open the %s catalog: %w", r.props["type"], err)
	}
	if c, ok := cat.(io.Closer); ok {
		defer c.Close()
	}
	if r.props["type"] == CatalogGlue {
		cat = glueConflicts{cat}
	}
	return retryConflicts(ctx, func() error { return fn(cat) })
}

// glueConflicts is iceberg-go's Glue catalog with every lost race
// reported as table.ErrCommitFailed, which Sluice retries. Its
// CommitTable (v0.7.0) reads the table from Glue again and checks the
// commit's requirements against it before writing anything; when
// another writer committed since Sluice loaded the table they fail, and
// the error it returns ("requirement failed: branch main has changed")
// is not ErrCommitFailed. Only the narrower race, between that read and
// its UpdateTable, is (Glue's ConcurrentModificationException).
//
// Tables are loaded and created through it so that their commits come
// back to its CommitTable (a table commits through the catalog it was
// made by).
type glueConflicts struct {
	catalog.Catalog
}

func (c glueConflicts) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	return c.own(c.Catalog.LoadTable(ctx, ident))
}

func (c glueConflicts) CreateTable(ctx context.Context, ident table.Identifier, sc *iceberg.Schema, opts ...catalog.CreateTableOpt) (*table.Table, error) {
	return c.own(c.Catalog.CreateTable(ctx, ident, sc, opts...))
}

func (c glueConflicts) own(tbl *table.Table, err error) (*table.Table, error) {
	if err != nil {
		return nil, err
	}
	return table.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(), tbl.FS, c), nil
}

// CommitTable reports a failed commit as ErrCommitFailed when its
// requirements do not hold on the table as Glue has it now, and the
// failure was not a Glue call's: iceberg-go failed it while staging, so
// nothing was committed and it is safe to do again. A failed UpdateTable
// is left as it is (unless Glue said ConcurrentModificationException,
// which iceberg-go reports already): it may have been applied.
func (c glueConflicts) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	md, loc, err := c.Catalog.CommitTable(ctx, ident, reqs, updates)
	if err == nil || errors.Is(err, table.ErrCommitFailed) || errors.As(err, new(*smithy.OperationError)) {
		return md, loc, err
	}
	cur, lerr := c.Catalog.LoadTable(ctx, ident)
	if lerr != nil {
		return md, loc, err
	}
	for _, r := range reqs {
		if r.Validate(cur.Metadata()) != nil {
			return nil, "", fmt.Errorf("%w: another writer committed first: %w", table.ErrCommitFailed, err)
		}
	}
	return md, loc, err
}

// embedded is iceberg-go's SQL catalog on a SQLite file kept in the output
// location. A change downloads the file, applies fn to a private copy and
// puts it back only if nobody replaced it meanwhile (If-Match its ETag,
// or If-None-Match for the first): the put is the commit's compare-and-swap.
// A writer that loses runs fn again on the winner's catalog; the
// metadata files its lost attempt wrote are referenced by nothing.
type embedded struct {
	out   storage.Bucket
	cp    storage.ConditionalPutter
	props iceberg.Properties
}

func (e *embedded) with(ctx context.Context, fn func(catalog.Catalog) error) error {
	var lastErr error
	for range maxCatalogAttempts {
		dir, err := os.MkdirTemp("", "sluice-iceberg-")
		if err != nil {
			return err
		}
		err = e.attempt(ctx, filepath.Join(dir, "catalog.db"), fn)
		os.RemoveAll(dir)
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("the embedded catalog changed under %d attempts in a row: %w", maxCatalogAttempts, lastErr)
}

func (e *embedded) attempt(ctx context.Context, path string, fn func(catalog.Catalog) error) error {
	etag, err := e.download(ctx, path)
	if err != nil {
		return err
	}
	before, _ := os.Stat(path)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open the embedded catalog: %w", err)
	}
	// One connection: the file is private to this attempt, and SQLite
	// writes it through one connection at a time anyway.
	db.SetMaxOpenConns(1)
	cat, err := sqlcat.NewCatalog("sluice", db, sqlcat.SQLite, e.props)
	if err != nil {
		db.Close()
		return fmt.Errorf("open the embedded catalog: %w", err)
	}
	ferr := fn(cat)
	cat.Close()
	if err := db.Close(); err != nil && ferr == nil {
		ferr = err
	}
	if ferr != nil {
		return ferr
	}
	after, err := os.Stat(path)
	if err != nil {
		return err
	}
	if etag != "" && before != nil && after.ModTime().Equal(before.ModTime()) && after.Size() == before.Size() {
		return nil // read only
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := e.cp.PutIfMatch(ctx, CatalogKey, f, etag); err != nil {
		if errors.Is(err, storage.ErrPreconditionFailed) {
			return err
		}
		return fmt.Errorf("store the embedded catalog: %w", err)
	}
	return nil
}

// download copies the catalog file to path and returns the ETag it had
// ("" when there is none yet). The ETag is read before the body: if the
// file changes in between, the body is newer than the ETag and the put
// that follows fails its precondition, which is safe.
func (e *embedded) download(ctx context.Context, path string) (string, error) {
	info, err := e.out.Stat(ctx, CatalogKey)
	if errors.Is(err, storage.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the embedded catalog: %w", err)
	}
	rc, err := e.out.Get(ctx, CatalogKey)
	if err != nil {
		return "", fmt.Errorf("read the embedded catalog: %w", err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return "", fmt.Errorf("read the embedded catalog: %w", err)
	}
	return info.ETag, f.Close()
}
