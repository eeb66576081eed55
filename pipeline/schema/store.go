package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"sluice/pipeline/storage"
)

// Keys of the schema documents in the output location.
const (
	Dir        = "_sluice/schema/"
	currentKey = Dir + "current.json"
)

func versionKey(v int) string { return fmt.Sprintf("%sversions/%05d.json", Dir, v) }

// Store reads and writes the schema of the table in a bucket (the job's
// output location).
type Store struct {
	b storage.Bucket
}

// NewStore is the schema store of the table in b.
func NewStore(b storage.Bucket) *Store { return &Store{b: b} }

// Load returns the current schema, or the zero Schema (version 0) when the
// table has none yet.
func (s *Store) Load(ctx context.Context) (Schema, error) {
	sc, _, err := s.read(ctx)
	return sc, err
}

// Load reads the current schema document of a table whose files are below
// prefix in r, for readers that only read (the crawler); ok is false when
// there is none.
func Load(ctx context.Context, r storage.Reader, prefix string) (Schema, bool, error) {
	var sc Schema
	err := storage.ReadJSON(ctx, r, prefix+currentKey, &sc)
	if errors.Is(err, storage.ErrNotExist) {
		return Schema{}, false, nil
	}
	if err != nil {
		return Schema{}, false, fmt.Errorf("table schema: %w", err)
	}
	return sc, true, nil
}

func (s *Store) read(ctx context.Context) (Schema, string, error) {
	info, err := s.b.Stat(ctx, currentKey)
	if errors.Is(err, storage.ErrNotExist) {
		return Schema{}, "", nil
	}
	if err != nil {
		return Schema{}, "", fmt.Errorf("table schema: %w", err)
	}
	var sc Schema
	if err := storage.ReadJSON(ctx, s.b, currentKey, &sc); errors.Is(err, storage.ErrNotExist) {
		return Schema{}, info.ETag, nil // deleted since the Stat: the put will fail and retry
	} else if err != nil {
		return Schema{}, "", fmt.Errorf("table schema: %w", err)
	}
	return sc, info.ETag, nil
}

// maxAttempts bounds the optimistic retries of one update; each failed
// attempt means another run changed the schema.
const maxAttempts = 50

// Update applies fn to the current schema and stores the result, with a
// compare-and-swap on the current document (storage.ConditionalPutter) so
// that two runs changing the schema at once both land: the loser reads the
// winner's version and applies fn to it. fn returns false to leave the
// schema as it is. Only the run that won the current document writes the
// new version's history document, so two runs never both claim a version;
// a crash between the two leaves a version without its history document,
// which History makes up from the current one.
func (s *Store) Update(ctx context.Context, fn func(cur Schema) (Schema, bool, error)) (Schema, error) {
	cp, conditional := s.b.(storage.ConditionalPutter)
	for attempt := 1; ; attempt++ {
		cur, etag, err := s.read(ctx)
		if err != nil {
			return Schema{}, err
		}
		next, changed, err := fn(cur)
		if err != nil || !changed {
			return cur, err
		}
		next.At = time.Now().UTC()
		data, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return Schema{}, fmt.Errorf("encode table schema: %w", err)
		}
		if conditional {
			_, err = cp.PutIfMatch(ctx, currentKey, bytes.NewReader(data), etag)
		} else {
			err = s.b.Put(ctx, currentKey, bytes.NewReader(data))
		}
		if err == nil {
			if next.Version != cur.Version {
				err = storage.WriteJSON(ctx, s.b, versionKey(next.Version), next)
			}
			return next, err
		}
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return Schema{}, fmt.Errorf("put %s: %w", currentKey, err)
		}
		if attempt == maxAttempts {
			return Schema{}, fmt.Errorf("update table schema: %d attempts, other runs always won: %w", attempt, err)
		}
		d := time.Duration(rand.Int64N(int64(min(attempt, 20))*int64(5*time.Millisecond)) + 1)
		select {
		case <-ctx.Done():
			return Schema{}, ctx.Err()
		case <-time.After(d):
		}
	}
}

// History returns every version, oldest first.
func (s *Store) History(ctx context.Context) ([]Schema, error) {
	keys, err := storage.ListKeys(ctx, s.b, Dir+"versions/", nil)
	if err != nil {
		return nil, err
	}
	out := make([]Schema, 0, len(keys)+1)
	for _, k := range keys {
		var sc Schema
		if err := storage.ReadJSON(ctx, s.b, k, &sc); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	cur, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	if cur.Version > 0 && (len(out) == 0 || out[len(out)-1].Version < cur.Version) {
		out = append(out, cur)
	}
	return out, nil
}
