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
//	split   (1 task)          read every shard's manifest, check the rows
//	                          against what the partitions were built from,
//	                          merge the run's columns into the table's
//	                          schema, cut each date into files, row groups,
//	                          slices and column groups, write one reduce
//	                          input per slice
//	reduce  (1 per slice)     reduce.Slice: dedupe and sort the slice's rows
//	                          into one sorted run per column group
//	encode  (1 per fragment)  reduce.EncodeFragment: one column group of one
//	                          row group, in the job's file format
//	commit  (1 per date)      assemble each file from its fragments and
//	                          replace the partition (table.Format); the last
//	                          commit checks the books, records the
//	                          bookmarks and ends the step
//
// The package knows nothing of queues or Redis: each phase returns the
// work it makes ready (Next), which the caller enqueues, and phases meet
// through a Barrier the caller provides. Builder makes a run's Step from
// its workflow step, for the worker's tasks and for dry runs (Planner). Every phase is idempotent, so a
// retried or twice-delivered task changes nothing that was already done.
package job
