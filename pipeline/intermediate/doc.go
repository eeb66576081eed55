// Package intermediate is the one home of the format in which a job's map
// tasks hand rows to its reduce tasks, and of the code that writes and reads
// it.
//
// # Virtual buckets
//
// Every row falls in one of VBuckets virtual buckets by a hash of its
// dedupe key (VBucket), the same for every date, shard and process. A map
// task writes, per output date, one rows file and one ids file whose
// records are grouped by virtual bucket in ascending order, with an Index
// giving where each virtual bucket starts. After the map, the job cuts each
// date's virtual buckets into B contiguous ranges, one per reduce task and
// output file, choosing B from the date's size: the decision needs no
// re-mapping, and every copy of a key, from any shard, source or date, is
// in the same virtual bucket, so a reduce task that reads one range of
// every shard sees all of them.
//
// # Records
//
// A row record is
//
//	uvarint len(key), key, uvarint object index, uvarint line,
//	varint utc micros, varint local offset seconds,
//	uvarint len(fields), fields
//
// and fields are uvarint n, then n fields: uvarint column id, kind byte,
// payload (bool: 1 byte; int: varint; double: 8 bytes little endian;
// string: uvarint len + bytes; null: nothing). Column ids are per shard;
// the shard's manifest maps them to source paths. Fields is the one
// decoder of a record's fields, for the reduce, the encode and the file
// formats. The ids record of a row
// is the prefix of its row record up to and including the line: reducers
// of the other dates read these small files to find copies of their keys
// that landed on another date.
//
// # Files
//
// Each non-empty virtual bucket of a file is one segment. With CodecS2
// (remote scratch, where bytes cross a network) a segment is a complete
// S2 stream (github.com/klauspost/compress/s2, framed, with checksums);
// with CodecNone (scratch on local disk, where compression only cost CPU)
// it is the records as they are. Either way a reader can start at any
// segment boundary, so a reduce task fetches its range of virtual buckets
// with one ranged read per file.
// # Sorted runs and spill runs
//
// A reduce task hands each column group's rows to the encode tasks as a
// sorted run (SortedRow, in sorted.go); a reduce task whose slice does not
// fit its memory spills sorted chunks to local spill runs (spill.go) and
// merges them. Keys files (keys.go) record the keys a partition holds.
package intermediate
