package bookmark

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/storage"
)

// Store keeps the object index and the build records in a bucket (the job's
// output location) under _sluice/bookmarks/<job>/.
//
// The index is one small document per input folder, so a run reads and
// writes the folders it touches, not the whole history. Documents are only
// written when a job step has succeeded, by the one task that completed it.
type Store struct {
	b      storage.Bucket
	prefix string
}

// NewStore returns the bookmarks of one job in b.
func NewStore(b storage.Bucket, job string) *Store {
	return &Store{b: b, prefix: "_sluice/bookmarks/" + job + "/"}
}

func (s *Store) folderKey(objectKey string) string {
	return s.prefix + "objects/" + strings.TrimSuffix(path.Dir(objectKey), "/") + ".json"
}

func (s *Store) buildKey(date string) string { return s.prefix + "partitions/date=" + date + ".json" }

// Objects loads the index entries of the folders that hold keys.
func (s *Store) Objects(ctx context.Context, keys []string) (map[string]ObjectEntry, error) {
	folders := map[string]bool{}
	for _, k := range keys {
		folders[s.folderKey(k)] = true
	}
	names := make([]string, 0, len(folders))
	for f := range folders {
		names = append(names, f)
	}
	sort.Strings(names)
	docs := make([]map[string]ObjectEntry, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, name := range names {
		g.Go(func() error {
			var doc map[string]ObjectEntry
			if err := storage.ReadJSON(gctx, s.b, name, &doc); err != nil && !errors.Is(err, storage.ErrNotExist) {
				return err
			}
			docs[i] = doc
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]ObjectEntry{}
	for _, doc := range docs {
		for k, e := range doc {
			out[k] = e
		}
	}
	return out, nil
}

// RecordObjects merges entries into the index.
func (s *Store) RecordObjects(ctx context.Context, entries map[string]ObjectEntry) error {
	byFolder := map[string]map[string]ObjectEntry{}
	for k, e := range entries {
		f := s.folderKey(k)
		if byFolder[f] == nil {
			byFolder[f] = map[string]ObjectEntry{}
		}
		byFolder[f][k] = e
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for name, add := range byFolder {
		g.Go(func() error {
			doc := map[string]ObjectEntry{}
			if err := storage.ReadJSON(gctx, s.b, name, &doc); err != nil && !errors.Is(err, storage.ErrNotExist) {
				return err
			}
			for k, e := range add {
				doc[k] = e
			}
			return storage.WriteJSON(gctx, s.b, name, doc)
		})
	}
	return g.Wait()
}

// Builds loads the build records of dates (absent dates have none).
func (s *Store) Builds(ctx context.Context, dates []string) (map[string]Build, error) {
	out := map[string]Build{}
	for _, d := range dates {
		var b Build
		err := storage.ReadJSON(ctx, s.b, s.buildKey(d), &b)
		if errors.Is(err, storage.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[d] = b
	}
	return out, nil
}

// RecordBuild stores one partition's build record.
func (s *Store) RecordBuild(ctx context.Context, b Build) error {
	return storage.WriteJSON(ctx, s.b, s.buildKey(b.Date), b)
}
