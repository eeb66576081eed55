// Package transformtest builds raw Segment-style input for tests of the
// transform and of code that runs it: events, gzip objects and the
// received-day folders they live in.
package transformtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/civil"
	"sluice/pipeline/storage"
)

// Event renders a minimal valid event with the dedupe key id and the
// timestamp ts, plus extra top-level members ("name":value, already JSON).
func Event(id, ts string, extra ...string) string {
	s := fmt.Sprintf(`{"messageId":%q,"timestamp":%q,"event":"Opened","userId":"u1","context":{"device":{"model":"iPhone15,2","adTrackingEnabled":true},"os":{"name":"iOS"}},"integrations":{"All":true},"_metadata":{"bundled":["Segment.io"]}`, id, ts)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// Gzip is lines as one gzip NDJSON object.
func Gzip(lines ...string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		_, _ = io.WriteString(zw, l+"\n") // into memory: it cannot fail
	}
	zw.Close()
	return buf.Bytes()
}

// DayFolder is the received-day folder of a source for a UTC date
// (YYYY-MM-DD), as Segment names it: segment-logs/<source>/<epoch ms>/.
func DayFolder(source, utcDay string) string {
	d, err := time.Parse(time.DateOnly, utcDay)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("segment-logs/%s/%d/", source, d.UnixMilli())
}

// Put stores body under key, failing tb on error.
func Put(tb testing.TB, b storage.Bucket, key string, body []byte) {
	tb.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(body)); err != nil {
		tb.Fatal(err)
	}
}

// Date parses YYYY-MM-DD, failing tb on error.
func Date(tb testing.TB, s string) civil.Date {
	tb.Helper()
	d, err := civil.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// Window is the window from start to end (YYYY-MM-DD).
func Window(tb testing.TB, start, end string) civil.Window {
	tb.Helper()
	return civil.Window{Start: Date(tb, start), End: Date(tb, end)}
}
