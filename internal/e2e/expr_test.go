package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"

	"sluice/internal/api"
	"sluice/pipeline/storage"
)

// exprBlock is the job's where, derive and rename in the e2e workflow. It
// renames a column the refbench oracle does not compare, so that the
// oracle can judge the rest of the table.
const exprBlock = `
        where: 'type == "track"'
        derive:
          - {name: is_purchase, expression: 'event == "Order Completed"'}
          - {name: revenue_cents, expression: 'properties_revenue * 100', type: long}
        rename: {context_app_version: app_version}`

// A data engineer's loop with real processes: validate the changed
// workflow, preview it on the real input (no Redis, nothing written), then
// run it with a worker; the table holds exactly the track events of the
// window, the derived columns computed from each row, the renamed column,
// and the books balance with the filtered rows. With SLUICE_ORACLE (the
// refbench oracle) the unfiltered columns are also checked against the
// input's track lines, and with SLUICE_DUCKDB (a DuckDB CLI) the derived
// ones with a query.
func TestPreviewThenRunWithExpressions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t)
	c.generate(sampleConfig(1000))
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "workflows", "mobile-user.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "time_zone: America/Los_Angeles"
	if !strings.Contains(string(raw), anchor) {
		t.Fatalf("the example workflow has no %q; update this test", anchor)
	}
	file := filepath.Join(t.TempDir(), "mobile-user.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(raw), anchor, anchor+exprBlock, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = withEnv(c.env, "SLUICE_WORKFLOWS", file)

	if out, err := c.runScheduler(ctx, "validate"); err != nil || !strings.Contains(out, "1 workflow file: ok") {
		t.Fatalf("validate: %v\n%s", err, out)
	}

	// The preview needs no Redis: point it at a port nothing listens on.
	previewEnv := withEnv(c.env, "SLUICE_REDIS_URL", "redis://127.0.0.1:1/0")
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "scheduler"), "preview", "-start", window[1], "-o", "json")
	cmd.Env = previewEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("preview: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var pv struct {
		Stats struct {
			FilteredOut int64 `json:"filtered_out"`
		} `json:"stats"`
		Columns []struct{ Name, Type, Status string } `json:"columns"`
		Rows    []map[string]any                      `json:"rows"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &pv); err != nil {
		t.Fatalf("preview -o json: %v\n%s", err, stdout.String())
	}
	if len(pv.Rows) == 0 || pv.Stats.FilteredOut == 0 {
		t.Fatalf("preview: %d rows, %d filtered out", len(pv.Rows), pv.Stats.FilteredOut)
	}
	for _, r := range pv.Rows {
		if r["type"] != "track" || r["is_purchase"] != (r["event"] == "Order Completed") || r["app_version"] == nil {
			t.Fatalf("preview row: %v", r)
		}
	}
	if keys, err := storage.ListKeys(ctx, c.bucket("s3://lake"), "", nil); err != nil || len(keys) != 0 {
		t.Fatalf("the preview wrote to the lake: %v %v", keys, err)
	}

	w := c.startWorker("worker")
	waitLine(t, ctx, w, "the worker to start", contains("worker started"))
	var run api.Run
	out, err := c.runSchedulerJSON(ctx, &run, "start", "-start", window[0], "-end", window[2], "-wait")
	if err != nil || run.State != "SUCCEEDED" {
		t.Fatalf("run: %v, run %s\n%s", err, run.State, out)
	}
	if s := jobSummary(t, run); !s.Balanced || s.FilteredOut == 0 {
		t.Errorf("job summary: balanced %v, %d rows filtered out by where; want balanced books and some filtered: %s", s.Balanced, s.FilteredOut, s.Reconciliation)
	}

	want := expectedTrack(t, filepath.Join(c.s3.Dir, "raw"), window)
	got := map[string]int{}
	purchases := 0
	lake := c.bucket("s3://lake/mobile_user")
	err = lake.List(ctx, "year=", func(o storage.ObjectInfo) error {
		date := partitionOf(o.Key)
		for _, r := range readRows(t, lake, o.Key) {
			id := r["message_id"].String()
			exp, ok := want[id]
			if !ok || exp.date != date {
				t.Errorf("%s: message %s is not a track event of that date (%+v)", date, id, exp)
				continue
			}
			got[date]++
			if r["type"].String() != "track" || r["event"].String() != exp.event || r["is_purchase"].Boolean() != (exp.event == "Order Completed") {
				t.Errorf("%s: type %v, event %v, is_purchase %v; want %+v", id, r["type"], r["event"], r["is_purchase"], exp)
			}
			if r["app_version"].String() != exp.appVersion {
				t.Errorf("%s: app_version %v, want %q", id, r["app_version"], exp.appVersion)
			}
			if _, has := r["context_app_version"]; has {
				t.Errorf("%s: context_app_version is still written", id)
			}
			switch cents := r["revenue_cents"]; {
			case exp.revenue == nil && !cents.IsNull():
				t.Errorf("%s: revenue_cents %v without a revenue", id, cents)
			case exp.revenue != nil && (cents.IsNull() || cents.Int64() != int64(math.Round(*exp.revenue*100))):
				t.Errorf("%s: revenue_cents %v for revenue %v", id, cents, *exp.revenue)
			case exp.revenue != nil:
				purchases++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantPer := map[string]int{}
	for _, e := range want {
		wantPer[e.date]++
	}
	for _, d := range window {
		if got[d] != wantPer[d] || got[d] == 0 {
			t.Errorf("date %s: %d rows, want the %d track events", d, got[d], wantPer[d])
		}
	}
	if purchases == 0 {
		t.Error("no row with a revenue: the derived revenue was not exercised")
	}
	runOracleOnTrack(t, c)
	runDuckDB(t, c)
}

type trackEvent struct {
	date, event, appVersion string
	revenue                 *float64
}

// expectedTrack reads the raw logs on its own: the valid events whose
// Pacific date is in the window, one per message id (the first copy in
// object key and line order), of type track.
func expectedTrack(t *testing.T, root string, win []string) map[string]trackEvent {
	t.Helper()
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	out := map[string]trackEvent{}
	forEachLine(t, root, func(_ string, line []byte) {
		var ev struct {
			MessageID  string `json:"messageId"`
			Timestamp  string `json:"timestamp"`
			Type       string `json:"type"`
			Event      string `json:"event"`
			Context    struct{ App struct{ Version string } }
			Properties struct{ Revenue *float64 }
		}
		if json.Unmarshal(line, &ev) != nil || ev.MessageID == "" || seen[ev.MessageID] {
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, ev.Timestamp)
		if err != nil {
			return
		}
		seen[ev.MessageID] = true
		date := ts.In(la).Format(time.DateOnly)
		if ev.Type == "track" && slices.Contains(win, date) {
			out[ev.MessageID] = trackEvent{date: date, event: ev.Event, appVersion: ev.Context.App.Version, revenue: ev.Properties.Revenue}
		}
	})
	return out
}

// forEachLine calls fn with every line of every .gz object below root, in
// key order.
func forEachLine(t *testing.T, root string, fn func(key string, line []byte)) {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".gz") {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 32<<20)
		for sc.Scan() {
			fn(f, sc.Bytes())
		}
	}
}

func partitionOf(key string) string {
	for _, seg := range strings.Split(key, "/") {
		if v, ok := strings.CutPrefix(seg, "date="); ok {
			return v
		}
	}
	return ""
}

// readRows reads a Parquet file's rows by column name.
func readRows(t *testing.T, b storage.Reader, key string) []map[string]parquet.Value {
	t.Helper()
	r, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var cols []string
	for _, p := range f.Schema().Columns() {
		cols = append(cols, strings.Join(p, "."))
	}
	pr := parquet.NewReader(f)
	defer pr.Close()
	var out []map[string]parquet.Value
	buf := make([]parquet.Row, 64)
	for {
		n, err := pr.ReadRows(buf)
		for _, row := range buf[:n] {
			m := map[string]parquet.Value{}
			for _, v := range row {
				m[cols[v.Column()]] = v.Clone()
			}
			out = append(out, m)
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// runOracleOnTrack runs the refbench oracle (SLUICE_ORACLE) on a copy of
// the raw logs holding only their track lines: the table must be what the
// oracle computes from them (partitions, rows, ids, the sampled columns).
func runOracleOnTrack(t *testing.T, c *cluster) {
	bin := os.Getenv("SLUICE_ORACLE")
	if bin == "" {
		return
	}
	root := filepath.Join(c.s3.Dir, "raw")
	dir := t.TempDir()
	writers := map[string]*gzip.Writer{}
	var files []*os.File
	forEachLine(t, root, func(key string, line []byte) {
		var ev struct{ Type string }
		if json.Unmarshal(line, &ev) != nil || ev.Type != "track" {
			return
		}
		zw := writers[key]
		if zw == nil {
			rel, _ := filepath.Rel(root, key)
			p := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			zw = gzip.NewWriter(f)
			writers[key] = zw
		}
		if _, err := zw.Write(append(slices.Clone(line), '\n')); err != nil {
			t.Fatal(err)
		}
	})
	for _, zw := range writers {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		f.Close()
	}
	out, err := exec.Command(bin, "-in", dir, "-out", filepath.Join(c.s3.Dir, "lake", "mobile_user"), "-start", window[0], "-end", window[2]).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("oracle on the track lines: %s", lines[len(lines)-1])
	if err != nil {
		t.Errorf("oracle: %v\n%s", err, out)
	}
}

// runDuckDB checks the derived columns with a DuckDB query
// (SLUICE_DUCKDB names a DuckDB CLI: duckdb -csv -noheader -c SQL): no row
// whose is_purchase or revenue_cents differs from what the expressions
// say, and no row that is not a track event.
func runDuckDB(t *testing.T, c *cluster) {
	bin := os.Getenv("SLUICE_DUCKDB")
	if bin == "" {
		return
	}
	glob := filepath.Join(c.s3.Dir, "lake", "mobile_user", "year=*", "*", "*", "*.parquet")
	q := fmt.Sprintf(`SELECT count(*) FILTER (WHERE is_purchase IS DISTINCT FROM (event = 'Order Completed')
	  OR revenue_cents IS DISTINCT FROM CAST(round(properties_revenue * 100) AS BIGINT) OR type <> 'track'), count(*), count(revenue_cents)
	  FROM read_parquet('%s', hive_partitioning = true, union_by_name = true)`, glob)
	out, err := exec.Command(bin, "-csv", "-noheader", "-c", q).CombinedOutput()
	t.Logf("duckdb: wrong, rows, revenues = %s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, out)
	}
	if f := strings.Split(strings.TrimSpace(string(out)), ","); len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] == "0" {
		t.Errorf("duckdb: %s (want 0 wrong rows of some, with revenues)", out)
	}
}
