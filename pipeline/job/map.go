package job

import (
	"context"
	"strconv"

	"sluice/pipeline/mapper"
	"sluice/pipeline/storage"
	"sluice/pipeline/transform"
)

// Map maps shard number shard of shards; the task that completes the map
// phase makes the split task ready.
func (s *Step) Map(ctx context.Context, shard, shards int) (Next, error) {
	var sh transform.Shard
	if err := storage.ReadJSON(ctx, s.Scratch, s.shardKey(shard), &sh); err != nil {
		return Next{}, err
	}
	man, err := mapper.MapShard(ctx, s.In, s.Scratch, s.shardDir(shard), s.Spec, s.Window, sh, s.MapOptions)
	if err != nil {
		return Next{}, err
	}
	arr, err := s.Barrier.Arrive(ctx, "map", strconv.Itoa(shard), shards)
	if err != nil {
		return Next{}, err
	}
	s.progress(ctx, "map %d/%d shards", arr.Arrived, shards)
	next := Next{Mapped: &man.Stats, Shards: shards}
	if arr.Complete {
		if arr.First {
			s.log().Info("all map shards done", "shards", shards)
		}
		next.Split = true
	}
	return next, nil
}
