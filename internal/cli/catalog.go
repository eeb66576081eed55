package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"sluice/internal/config"
	"sluice/pipeline/catalog"
	"sluice/pipeline/storage"
	"sluice/pipeline/storage/storeurl"
)

func catalogCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var common config.Common
	fs := newFlags("catalog")
	common.Register(fs)
	loc := fs.String("catalog", "", "catalog location; default: the catalog of -workflow in -workflows")
	name := fs.String("workflow", "mobile-user", "workflow whose catalog to read")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: scheduler catalog [flags] list
       scheduler catalog [flags] show DB.TABLE [-history]
       scheduler catalog [flags] ddl DB.TABLE [-projection] [-batch N] [-map-location FROM=TO]...`)
		fs.PrintDefaults()
	}
	if err := parse(fs, hoistFlags(fs, args)); err != nil {
		return err
	}
	unknown := func() error {
		fs.Usage()
		return usageErr(fmt.Errorf("catalog: unknown subcommand %q", fs.Arg(0)))
	}
	// Checked before the catalog opens, so a typo is not reported as a
	// missing catalog.
	if !slices.Contains([]string{"", "list", "show", "ddl"}, fs.Arg(0)) {
		return unknown()
	}
	if *loc == "" {
		wfs, err := common.LoadWorkflows()
		if err != nil {
			return usageErr(err)
		}
		wf := wfs[*name]
		if wf == nil {
			return usageErr(fmt.Errorf("-workflow: unknown workflow %q", *name))
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
		if l, err := storage.ParseLocation(*loc); err == nil && l.Scheme == "file" {
			if _, err := os.Stat(l.Path); err != nil {
				return fmt.Errorf("catalog %s: %w (-catalog, SLUICE_CATALOG or the workflow's catalog:)", storage.CanonicalLocation(*loc), err)
			}
		}
		var buf bytes.Buffer
		if err := printCatalog(ctx, &buf, store, true); err != nil {
			return err
		}
		if buf.Len() == 0 {
			fmt.Fprintf(stdout, "no tables in catalog %s\n", b.Location())
		}
		_, err := buf.WriteTo(stdout)
		return err
	case "show":
		sub := newFlags("catalog show")
		history := sub.Bool("history", false, "also print every schema version and what changed")
		db, table, err := tableArg(sub, fs.Args()[1:])
		if err != nil {
			return err
		}
		t, parts, err := loadTable(ctx, store, db, table)
		if err != nil {
			return fmt.Errorf("catalog %s: %w", b.Location(), err)
		}
		if err := catalog.Describe(stdout, t, parts); err != nil {
			return err
		}
		if !*history {
			return nil
		}
		hist, err := store.History(ctx, db, table)
		if err != nil {
			return err
		}
		return catalog.DescribeHistory(stdout, hist)
	case "ddl":
		sub := newFlags("catalog ddl")
		var o catalog.DDLOptions
		sub.BoolVar(&o.Projection, "projection", false, "add partition-projection table properties (no ALTER TABLE ADD PARTITION needed)")
		sub.IntVar(&o.PartitionBatch, "batch", 100, "partitions per ALTER TABLE statement")
		o.MapLocation = map[string]string{}
		sub.Func("map-location", "FROM=TO: print locations starting with FROM as TO (e.g. file:///data/=s3://lake/); repeatable", func(v string) error {
			from, to, ok := strings.Cut(v, "=")
			if !ok || from == "" || !strings.HasPrefix(to, "s3://") {
				return errors.New("want FROM=s3://bucket/prefix")
			}
			o.MapLocation[from] = to
			return nil
		})
		db, table, err := tableArg(sub, fs.Args()[1:])
		if err != nil {
			return err
		}
		t, parts, err := loadTable(ctx, store, db, table)
		if err != nil {
			return fmt.Errorf("catalog %s: %w", b.Location(), err)
		}
		ddl, err := catalog.CreateTableDDL(t, parts, o)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, ddl)
		if o.Projection {
			return nil
		}
		alters, err := catalog.AddPartitionsDDL(t, parts, o)
		if err != nil {
			return err
		}
		for _, a := range alters {
			fmt.Fprint(stdout, "\n"+a)
		}
		return nil
	}
	return unknown()
}

// hoistFlags moves the flags fs knows, with their values, before the
// other arguments, so that they may also follow a subcommand
// (catalog list -catalog X).
func hoistFlags(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if !strings.HasPrefix(a, "-") || f == nil {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, rest...)
}

// tableArg parses a subcommand's DB.TABLE argument and its flags, which
// may come before or after it.
func tableArg(fs *flag.FlagSet, args []string) (db, table string, err error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return "", "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", "", usageErr(fmt.Errorf("usage: scheduler catalog %s DB.TABLE", strings.TrimPrefix(fs.Name(), "scheduler catalog ")))
	}
	db, table, ok := strings.Cut(pos[0], ".")
	if !ok {
		return "", "", usageErr(fmt.Errorf("%q: want DB.TABLE", pos[0]))
	}
	return db, table, nil
}

// loadTable reads a table and its partitions.
func loadTable(ctx context.Context, store *catalog.Store, db, table string) (catalog.Table, []catalog.Partition, error) {
	t, err := store.GetTable(ctx, db, table)
	if err != nil {
		return t, nil, err
	}
	parts, err := store.ListPartitions(ctx, db, table)
	return t, parts, err
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
