package crawl

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/catalog"
	"sluice/pipeline/storage"
)

// object is one listed data file, with its key relative to the target path.
type object struct {
	storage.ObjectInfo
	rel  string
	dirs []string // folder segments between the target path and the file
}

// listObjects lists everything below prefix, one goroutine per top-level
// folder, skipping ignored folders without listing them.
func listObjects(ctx context.Context, src storage.Reader, prefix string, concurrency int) ([]object, int, error) {
	dirs, err := src.ListDirs(ctx, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list folders of %q: %w", prefix, err)
	}
	if len(dirs) == 0 {
		dirs = []string{prefix}
	}
	parts := make([][]object, len(dirs))
	var mu sync.Mutex
	listed := 0
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, d := range dirs {
		if ignored(strings.TrimSuffix(strings.TrimPrefix(d, prefix), "/")) {
			continue
		}
		g.Go(func() error {
			n := 0
			err := src.List(ctx, d, func(o storage.ObjectInfo) error {
				n++
				rel := strings.TrimPrefix(o.Key, prefix)
				segs := strings.Split(rel, "/")
				for _, s := range segs {
					if ignored(s) {
						return nil
					}
				}
				if o.Size == 0 && strings.HasSuffix(o.Key, "/") {
					return nil // a folder marker
				}
				parts[i] = append(parts[i], object{ObjectInfo: o, rel: rel, dirs: segs[:len(segs)-1]})
				return nil
			})
			mu.Lock()
			listed += n
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("list %q: %w", d, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, listed, err
	}
	var out []object
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, listed, nil
}

// ignored reports whether a file or folder name is hidden from crawls, like
// _SUCCESS, _errors/, _staging/ or .DS_Store.
func ignored(name string) bool {
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")
}

// layout is the partition structure found in the listing.
type layout struct {
	keys       []catalog.Column
	partitions []*partition // sorted by folder
	skipped    []object     // files at an unexpected depth
}

type partition struct {
	dir         string // relative folder, "" for an unpartitioned table
	values      []string
	files       []object
	fingerprint string
}

var epochDay = regexp.MustCompile(`^[0-9]{13}$`)

// detectLayout finds the partition keys from the folder names.
func detectLayout(objs []object) layout {
	depthCount := map[int]int{}
	for _, o := range objs {
		depthCount[len(o.dirs)]++
	}
	depth, best := 0, -1
	for d, n := range depthCount {
		if n > best || n == best && d < depth {
			depth, best = d, n
		}
	}
	var l layout
	var used []object
	for _, o := range objs {
		if len(o.dirs) == depth {
			used = append(used, o)
		} else {
			l.skipped = append(l.skipped, o)
		}
	}
	// Per level: how to read a folder name as a partition value.
	value := make([]func(string) string, depth)
	for lvl := range depth {
		names := map[string]bool{}
		for _, o := range used {
			names[o.dirs[lvl]] = true
		}
		col, fn := levelKey(lvl, names)
		l.keys = append(l.keys, col)
		value[lvl] = fn
	}
	byDir := map[string]*partition{}
	for _, o := range used {
		dir := strings.Join(o.dirs, "/")
		p := byDir[dir]
		if p == nil {
			p = &partition{dir: dir}
			for lvl, seg := range o.dirs {
				p.values = append(p.values, value[lvl](seg))
			}
			byDir[dir] = p
			l.partitions = append(l.partitions, p)
		}
		p.files = append(p.files, o)
	}
	sort.Slice(l.partitions, func(i, j int) bool { return l.partitions[i].dir < l.partitions[j].dir })
	return l
}

func levelKey(lvl int, names map[string]bool) (catalog.Column, func(string) string) {
	key, kv := "", true
	for n := range names {
		k, _, ok := strings.Cut(n, "=")
		if !ok || (key != "" && k != key) {
			kv = false
			break
		}
		key = k
	}
	if kv && key != "" {
		typ := catalog.KindInt
		for n := range names {
			_, v, _ := strings.Cut(n, "=")
			i, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil:
				typ = catalog.KindString
			case (i < -1<<31 || i >= 1<<31) && typ == catalog.KindInt:
				typ = catalog.KindBigint
			}
			if typ == catalog.KindString {
				break
			}
		}
		return catalog.Column{Name: catalog.HiveName(key), Type: catalog.Prim(typ)}, func(seg string) string {
			_, v, _ := strings.Cut(seg, "=")
			if u, err := url.PathUnescape(v); err == nil {
				return u // Hive escapes special characters as %XX
			}
			return v
		}
	}
	allDays := len(names) > 0
	for n := range names {
		if !isEpochDay(n) {
			allDays = false
			break
		}
	}
	if allDays {
		return catalog.Column{Name: "received_day", Type: catalog.Prim(catalog.KindDate)}, func(seg string) string {
			ms, _ := strconv.ParseInt(seg, 10, 64)
			return time.UnixMilli(ms).UTC().Format("2006-01-02")
		}
	}
	return catalog.Column{Name: fmt.Sprintf("partition_%d", lvl), Type: catalog.Prim(catalog.KindString)},
		func(seg string) string { return seg }
}

// isEpochDay reports whether s is 13-digit epoch milliseconds at a UTC
// midnight, as Segment names its received-day folders.
func isEpochDay(s string) bool {
	if !epochDay.MatchString(s) {
		return false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	return err == nil && ms%(24*60*60*1000) == 0
}
