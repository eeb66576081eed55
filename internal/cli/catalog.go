package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"sluice/internal/config"
	"sluice/pipeline/catalog"
	"sluice/pipeline/storage/storeurl"
)

func catalogCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("catalog")
	common.Register(fs)
	loc := fs.String("catalog", "", "catalog location; default: the catalog of -workflow in -workflows")
	name := fs.String("workflow", "mobile-user", "workflow whose catalog to read")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: scheduler catalog [flags] list | show DB.TABLE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *loc == "" {
		wfs, err := common.LoadWorkflows()
		if err != nil {
			return err
		}
		wf := wfs[*name]
		if wf == nil {
			return fmt.Errorf("-workflow: unknown workflow %q", *name)
		}
		*loc = wf.Catalog
	}
	b, err := storeurl.Open(ctx, *loc, common.S3)
	if err != nil {
		return fmt.Errorf("-catalog: %w", err)
	}
	store := catalog.New(b)
	switch fs.Arg(0) {
	case "", "list":
		return printCatalog(ctx, stdout, store, true)
	case "show":
		db, table, ok := strings.Cut(fs.Arg(1), ".")
		if !ok {
			return errors.New("usage: scheduler catalog show DB.TABLE")
		}
		t, err := store.GetTable(ctx, db, table)
		if err != nil {
			return err
		}
		parts, err := store.ListPartitions(ctx, db, table)
		if err != nil {
			return err
		}
		return catalog.Describe(stdout, t, parts)
	}
	fs.Usage()
	return flag.ErrHelp
}

// printCatalog prints every table; brief prints one line per table instead
// of its schema and partitions.
func printCatalog(ctx context.Context, w io.Writer, store *catalog.Store, brief bool) error {
	dbs, err := store.ListDatabases(ctx)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		tables, err := store.ListTables(ctx, db)
		if err != nil {
			return err
		}
		for _, t := range tables {
			parts, err := store.ListPartitions(ctx, db, t.Name)
			if err != nil {
				return err
			}
			if brief {
				fmt.Fprintf(w, "%s\t%d columns\t%d partitions\tv%d\t%s\n", t.QualifiedName(), len(t.Columns), len(parts), t.Version, t.Location)
				continue
			}
			fmt.Fprintln(w)
			if err := catalog.Describe(w, t, parts); err != nil {
				return err
			}
		}
	}
	return nil
}
