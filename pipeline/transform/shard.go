package transform

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
