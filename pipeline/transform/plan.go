package transform

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"sluice/pipeline/storage"
)

// Object is one raw log object to read.
type Object struct {
	Source string `json:"source"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag"`
}

// Shard is a contiguous run of objects in global key order. Because shards
// are contiguous, (shard index, object index, line) orders lines exactly as
// (object key, line) does, which is what deduplication relies on.
type Shard struct {
	Index   int      `json:"index"`
	Objects []Object `json:"objects"`
}

// Bytes is the compressed size of the shard's objects.
func (s Shard) Bytes() int64 {
	var n int64
	for _, o := range s.Objects {
		n += o.Size
	}
	return n
}

// lookbackDays is how many received-day folders before the window start are
// read: a local date D starts at most a day before D in UTC for any zone
// west of UTC+14, and events are never received before they happen.
const lookbackDays = 1

// PlanShards lists the input for the window and cuts it into shards of about
// spec.ShardBytes compressed bytes (an object is never split; a shard holds
// at least one object).
//
// Every received-day folder of every source from the UTC day before
// w.Start up to the newest is read, because late events may arrive any time
// after their date. Folders whose name is not an epoch-milliseconds number,
// and objects not ending in ".gz", are ignored. The result depends only on
// the listing, so planning twice over the same input gives the same shards.
func PlanShards(ctx context.Context, in storage.Reader, spec Spec, w Window) ([]Shard, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("plan shards: %w", err)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("plan shards: %w", err)
	}
	cutoff := w.Start.AddDays(-lookbackDays).UTCMidnight().UnixMilli()
	seen := map[string]bool{}
	var objs []Object
	for _, src := range spec.Sources {
		prefix := src.Path
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		dirs, err := in.ListDirs(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("plan shards: list %s: %w", prefix, err)
		}
		for _, dir := range dirs {
			ms, err := strconv.ParseInt(path.Base(dir), 10, 64)
			if err != nil || ms < cutoff {
				continue
			}
			err = in.List(ctx, dir, func(oi storage.ObjectInfo) error {
				if !strings.HasSuffix(oi.Key, ".gz") || seen[oi.Key] {
					return nil
				}
				seen[oi.Key] = true
				objs = append(objs, Object{Source: src.Name, Key: oi.Key, Size: oi.Size, ETag: oi.ETag})
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("plan shards: list %s: %w", dir, err)
			}
		}
	}
	return CutShards(objs, spec.ShardBytes), nil
}

// CutShards sorts objects by key and cuts them into shards of about
// shardBytes compressed bytes (an object is never split; a shard holds at
// least one object). Callers that choose a subset of a plan's objects (see
// pipeline/bookmark) re-cut it with this, keeping shards in key order.
func CutShards(objs []Object, shardBytes int64) []Shard {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	var shards []Shard
	var cur Shard
	var curBytes int64
	for _, o := range objs {
		if len(cur.Objects) > 0 && curBytes+o.Size > shardBytes {
			shards = append(shards, cur)
			cur = Shard{Index: len(shards)}
			curBytes = 0
		}
		cur.Objects = append(cur.Objects, o)
		curBytes += o.Size
	}
	if len(cur.Objects) > 0 {
		shards = append(shards, cur)
	}
	return shards
}
