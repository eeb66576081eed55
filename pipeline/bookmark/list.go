package bookmark

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice/pipeline/storage"
)

// BuiltDates lists the dates that have a build record, sorted (one LIST
// of the build records' folder).
func (s *Store) BuiltDates(ctx context.Context) ([]string, error) {
	var out []string
	err := s.b.List(ctx, s.prefix+"partitions/", func(oi storage.ObjectInfo) error {
		name := path.Base(oi.Key)
		if d, ok := strings.CutPrefix(strings.TrimSuffix(name, ".json"), "date="); ok && strings.HasSuffix(name, ".json") {
			out = append(out, d)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// LoadBuilds is Builds reading up to 16 records at once: for pages that
// show many partitions.
func (s *Store) LoadBuilds(ctx context.Context, dates []string) (map[string]Build, error) {
	builds := make([]*Build, len(dates))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, d := range dates {
		g.Go(func() error {
			var b Build
			err := storage.ReadJSON(gctx, s.b, s.buildKey(d), &b)
			if errors.Is(err, storage.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			builds[i] = &b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]Build{}
	for i, b := range builds {
		if b != nil {
			out[dates[i]] = *b
		}
	}
	return out, nil
}
