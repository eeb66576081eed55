// Package job runs a transform job step (the Glue "mobile-user-daily" job)
// as phases that many workers share, and owns everything between the
// phases: the plan, the per-date split into files, the commit of each
// partition, the run's books, the bookmarks and the scratch layout.
//
//	plan    (1 task)          list the input, ask the bookmarks which
//	                          partitions to rebuild, refuse a run that would
//	                          empty published partitions, cut the objects
//	                          into shards sized for the fleet
//	map     (1 per shard)     mapper.MapShard: rows grouped by date and
//	                          virtual bucket into scratch
//	bucket  (1 task)          read every shard's manifest, check the rows
//	                          against what the partitions were built from,
//	                          choose each date's number of files, write one
//	                          reduce input per (date, file)
//	reduce  (1 per file)      transform.ReduceBucket into a staged file
//	commit  (1 per date)      replace the partition's files with the staged
//	                          ones; the last commit checks the books, records
//	                          the bookmarks and ends the step
//
// The package knows nothing of queues or Redis: each phase returns the
// work it makes ready (Next), which the caller enqueues, and phases meet
// through a Barrier the caller provides. Every phase is idempotent, so a
// retried or twice-delivered task changes nothing that was already done.
package job
