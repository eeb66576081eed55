package transform

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"sluice/pipeline/segmentgen"
)

// remoteBucket is a memBucket that says it is an object store, so the map
// compresses its intermediates.
type remoteBucket struct{ *memBucket }

func (remoteBucket) Location() string { return "s3://scratch/" }

// TestIntermediateCompression maps the same input into a local and a
// remote scratch: the remote intermediates are S2-compressed, the local
// ones are stored blocks, and the reduce publishes the same bytes from
// either.
func TestIntermediateCompression(t *testing.T) {
	in := newMemBucket()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = 500
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	start := DateOf(cfg.Start)
	w := Window{Start: start, End: start.AddDays(cfg.Days - 1)}
	spec := DefaultSpec()
	spec.ShardBytes = 200 << 10
	local, remote := newMemBucket(), remoteBucket{newMemBucket()}
	outLocal, outRemote := newMemBucket(), newMemBucket()
	runJob(t, in, local, outLocal, spec, w, ReduceOptions{})
	runJob(t, in, remote, outRemote, spec, w, ReduceOptions{})

	var localBytes, remoteBytes int
	for k, v := range local.snapshot() {
		if strings.HasSuffix(k, ".rows") || strings.HasSuffix(k, ".ids") {
			localBytes += len(v)
			remoteBytes += len(remote.snapshot()[k])
		}
	}
	t.Logf("intermediates: %d bytes local (stored), %d remote (S2)", localBytes, remoteBytes)
	if localBytes == 0 || remoteBytes*2 > localBytes {
		t.Errorf("intermediates: %d bytes in the local scratch, %d in the remote one", localBytes, remoteBytes)
	}
	a, b := outLocal.snapshot(), outRemote.snapshot()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d and %d output objects", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between local and remote scratch", k)
		}
	}
}
