package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// ReadJSON decodes the JSON document at key into v. A missing key gives a
// wrapped ErrNotExist.
func ReadJSON(ctx context.Context, r Reader, key string, v any) error {
	rc, err := r.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// WriteJSON stores v as an indented JSON document at key: documents in
// buckets (catalog, bookmarks, plans) are small, and a person may read them.
func WriteJSON(ctx context.Context, b Bucket, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := b.Put(ctx, key, bytes.NewReader(append(data, '\n'))); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
