package segmentgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/storage"
	"sluice/pipeline/storage/memstore"
)

func smallConfig() Config {
	c := DefaultConfig()
	c.EventsPerDay = 600
	c.DuplicateRate = 0.03
	c.LateRate = 0.05
	c.MalformedRate = 0.01
	return c
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := memstore.New(), memstore.New()
	if _, err := Generate(ctx, a, smallConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.Concurrency = 1 // ordering of the work must not matter
	if _, err := Generate(ctx, b, cfg); err != nil {
		t.Fatal(err)
	}
	if len(a.Objects()) != len(b.Objects()) || len(a.Objects()) == 0 {
		t.Fatalf("object counts differ: %d vs %d", len(a.Objects()), len(b.Objects()))
	}
	for k, v := range a.Objects() {
		if !bytes.Equal(v, b.Objects()[k]) {
			t.Fatalf("%s differs between runs", k)
		}
	}
	c := memstore.New()
	cfg.Seed = 2
	if _, err := Generate(ctx, c, cfg); err != nil {
		t.Fatal(err)
	}
	same := 0
	for k, v := range a.Objects() {
		if bytes.Equal(v, c.Objects()[k]) {
			same++
		}
	}
	if same != 0 {
		t.Fatalf("%d objects identical across different seeds", same)
	}
}

// TestSummaryMatchesOutput re-reads everything written and recounts it with
// encoding/json and time.Parse, independently of the generator's own books.
func TestSummaryMatchesOutput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := memstore.New()
	cfg := smallConfig()
	sum, err := Generate(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pacific, _ := time.LoadLocation("America/Los_Angeles")

	files := map[string]int64{}
	ids := map[string]map[string]bool{} // date -> messageIds
	idDate := map[string]string{}
	var lines, valid, malformed, offsets, millis, nearMidnight, wrongFolder int64
	badKinds := map[string]int{}
	kinds := map[string]map[string]bool{} // source -> event names, "screen" and "identify"
	err = b.List(ctx, "segment-logs/", func(o storage.ObjectInfo) error {
		parts := strings.Split(o.Key, "/")
		if len(parts) != 4 || !strings.HasSuffix(o.Key, ".gz") {
			t.Errorf("unexpected key %s", o.Key)
		}
		rc, _ := b.Get(ctx, o.Key)
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines++
			files[o.Key]++
			if !utf8.Valid(sc.Bytes()) {
				t.Errorf("%s: line %d is not UTF-8", o.Key, files[o.Key])
			}
			var ev struct {
				MessageID  *string `json:"messageId"`
				Timestamp  string  `json:"timestamp"`
				ReceivedAt string  `json:"receivedAt"`
				Type       string  `json:"type"`
				Event      string  `json:"event"`
				Context    struct {
					UserAgent string             `json:"userAgent"`
					Screen    map[string]float64 `json:"screen"`
				} `json:"context"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				malformed++
				badKinds["json"]++
				continue
			}
			ts, terr := time.Parse(time.RFC3339Nano, ev.Timestamp)
			if ev.MessageID == nil || *ev.MessageID == "" {
				malformed++
				badKinds["messageId"]++
				continue
			}
			if terr != nil {
				malformed++
				badKinds["timestamp"]++
				continue
			}
			valid++
			recv, err := time.Parse(time.RFC3339Nano, ev.ReceivedAt)
			if err != nil {
				t.Fatalf("receivedAt %q: %v", ev.ReceivedAt, err)
			}
			day := recv.UTC().Truncate(24 * time.Hour)
			if parts[2] != itoa(day.UnixMilli()) {
				wrongFolder++
			}
			android := parts[1] == "android"
			// Android sends the JVM's agent, iOS the web view's.
			if wantUA := map[bool]string{true: "Dalvik/", false: "Mozilla/5.0 ("}[android]; !strings.HasPrefix(ev.Context.UserAgent, wantUA) {
				t.Errorf("%s: userAgent %q, want %s…", o.Key, ev.Context.UserAgent, wantUA)
			}
			kind := ev.Type
			if ev.Type == "track" {
				kind = ev.Event
			}
			if kinds[parts[1]] == nil {
				kinds[parts[1]] = map[string]bool{}
			}
			kinds[parts[1]][kind] = true
			if _, ok := ev.Context.Screen["density"]; ok != android {
				t.Errorf("%s: screen.density presence wrong", o.Key)
			}
			if !strings.HasSuffix(ev.Timestamp, "Z") {
				offsets++
			}
			if strings.Contains(ev.Timestamp, ".") {
				millis++
			}
			local := ts.In(pacific)
			if m := local.Hour()*60 + local.Minute(); m < 10 || m >= 24*60-10 {
				nearMidnight++
			}
			date := local.Format("2006-01-02")
			if ids[date] == nil {
				ids[date] = map[string]bool{}
			}
			if d, ok := idDate[*ev.MessageID]; ok && d != date {
				t.Errorf("messageId %s on two dates", *ev.MessageID)
			}
			idDate[*ev.MessageID] = date
			ids[date][*ev.MessageID] = true
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if wrongFolder != 0 {
		t.Errorf("%d events in a folder that is not the UTC day of receivedAt", wrongFolder)
	}

	// Files and lines per folder.
	var sumFiles int
	for _, f := range sum.Folders {
		for _, fi := range f.Files {
			sumFiles++
			if files[fi.Key] != fi.Lines {
				t.Errorf("%s: summary says %d lines, read %d", fi.Key, fi.Lines, files[fi.Key])
			}
			if !strings.HasPrefix(fi.Key, f.Prefix) {
				t.Errorf("%s not below %s", fi.Key, f.Prefix)
			}
		}
	}
	if sumFiles != len(files) {
		t.Errorf("summary lists %d files, bucket has %d", sumFiles, len(files))
	}
	// Expected answer.
	if len(sum.Expected) != len(ids) {
		t.Errorf("expected dates: summary %d, recount %d", len(sum.Expected), len(ids))
	}
	var distinct int64
	for _, dc := range sum.Expected {
		if got := int64(len(ids[dc.Date])); got != dc.MessageIDs {
			t.Errorf("%s: summary expects %d messageIds, recount %d", dc.Date, dc.MessageIDs, got)
		}
		if dc.BySource["ios"]+dc.BySource["android"] != dc.MessageIDs {
			t.Errorf("%s: per-source counts do not add up", dc.Date)
		}
		distinct += dc.MessageIDs
	}
	if sum.Lines != lines || sum.Malformed != malformed || sum.Events != distinct ||
		sum.Duplicates != valid-distinct {
		t.Errorf("totals: summary lines=%d malformed=%d events=%d dups=%d; recount lines=%d malformed=%d distinct=%d dups=%d",
			sum.Lines, sum.Malformed, sum.Events, sum.Duplicates, lines, malformed, distinct, valid-distinct)
	}
	// The awkward cases must actually be there.
	if badKinds["json"] == 0 || badKinds["messageId"] == 0 || badKinds["timestamp"] == 0 {
		t.Errorf("malformed kinds missing: %v", badKinds)
	}
	if sum.Duplicates == 0 || sum.Late == 0 || offsets == 0 || millis == 0 || millis == valid || nearMidnight == 0 {
		t.Errorf("missing variety: dups=%d late=%d offsets=%d millis=%d/%d nearMidnight=%d",
			sum.Duplicates, sum.Late, offsets, millis, valid, nearMidnight)
	}
	// Every event type, from each source.
	for _, src := range []string{"ios", "android"} {
		if len(kinds[src]) != int(numEventTypes) {
			t.Errorf("%s: %d event types, want %d: %v", src, len(kinds[src]), numEventTypes, kinds[src])
		}
	}
	// The DST day (2024-03-10) is in range and has events.
	if sum.ExpectedFor("2024-03-10") == 0 {
		t.Errorf("no events on the DST day")
	}
	t.Logf("lines=%d events=%d dups=%d late=%d malformed=%d (%v) bytes=%d gz=%d dates=%d",
		sum.Lines, sum.Events, sum.Duplicates, sum.Late, sum.Malformed, badKinds, sum.Bytes, sum.CompressedBytes, len(sum.Expected))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// discardBucket measures generation speed without storage costs.
type discardBucket struct{ *memstore.Bucket }

func (d *discardBucket) Put(ctx context.Context, key string, body io.Reader) error {
	_, err := io.Copy(io.Discard, body)
	return err
}

func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.EventsPerDay = 20000
	var bytes int64
	for b.Loop() {
		sum, err := Generate(context.Background(), &discardBucket{memstore.New()}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		bytes = sum.Bytes
	}
	b.SetBytes(bytes)
}
