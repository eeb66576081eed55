package transform

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

func testSpec() Spec {
	s := DefaultSpec()
	s.ShardBytes = 1 << 20
	return s
}

func mustDate(t testing.TB, s string) civil.Date {
	t.Helper()
	d, err := civil.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func window(t testing.TB, start, end string) civil.Window {
	return civil.Window{Start: mustDate(t, start), End: mustDate(t, end)}
}

// dayFolder is the received-day folder of a source for a UTC date.
func dayFolder(source, utcDay string) string {
	d, _ := time.Parse(time.DateOnly, utcDay)
	return fmt.Sprintf("segment-logs/%s/%d/", source, d.UnixMilli())
}

func gz(lines ...string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		io.WriteString(zw, l+"\n")
	}
	zw.Close()
	return buf.Bytes()
}

func put(t testing.TB, b storage.Bucket, key string, body []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// ev renders a minimal valid event.
func ev(id, ts string, extra ...string) string {
	s := fmt.Sprintf(`{"messageId":%q,"timestamp":%q,"event":"Opened","userId":"u1","context":{"device":{"model":"iPhone15,2","adTrackingEnabled":true},"os":{"name":"iOS"}},"integrations":{"All":true},"_metadata":{"bundled":["Segment.io"]}`, id, ts)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}
