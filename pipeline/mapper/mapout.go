package mapper

// What a map task writes: its quarantine, and at the end its intermediates
// and manifest.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/civil"
	"sluice/pipeline/intermediate"
	"sluice/pipeline/storage"
)

func (m *mapper) quarantineLine(lineNo int64, reason, detail string, raw []byte) error {
	m.stats.Quarantined[reason]++
	if m.quarantine == nil {
		f, err := os.CreateTemp(m.opts.TempDir, "sluice-quarantine-*")
		if err != nil {
			return fmt.Errorf("create temp file: %w", err)
		}
		m.quarantine = f
		m.quarantineGz, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
	}
	qr := QuarantineRecord{Source: m.curSource, Key: m.curKey, Line: lineNo, Reason: reason, Detail: detail, Raw: string(raw)}
	if !utf8.Valid(raw) {
		qr.RawBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	rec, err := json.Marshal(qr)
	if err != nil {
		return fmt.Errorf("encode quarantine record: %w", err)
	}
	rec = append(rec, '\n')
	if _, err := m.quarantineGz.Write(rec); err != nil {
		return fmt.Errorf("write quarantine: %w", err)
	}
	return nil
}

// publish uploads the shard's outputs, removes leftovers of earlier
// attempts, and writes the manifest last.
func (m *mapper) publish(ctx context.Context, scratch storage.Bucket, dir string, shard int, w civil.Window) (*Manifest, error) {
	keep := map[string]bool{}
	man := &Manifest{Version: manifestVersion, Shard: shard, Codec: m.codec, Window: w, Paths: m.colPaths, Stats: m.stats}
	put := func(name string, f *os.File) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind %s: %w", name, err)
		}
		if err := scratch.Put(ctx, dir+name, f); err != nil {
			return fmt.Errorf("put %s: %w", dir+name, err)
		}
		keep[dir+name] = true
		return nil
	}
	for _, day := range m.out.Dates() {
		date := civil.FromDays(day)
		df := DateFiles{Date: date, Rows: m.out.Rows(day), RowsFile: rowsName(date), IDsFile: idsName(date), Kinds: m.kinds[day-m.startDay]}
		var err error
		df.RowsIndex, df.IDsIndex, err = m.finish(ctx, scratch, day, dir+df.RowsFile, dir+df.IDsFile)
		if err != nil {
			return nil, err
		}
		keep[dir+df.RowsFile], keep[dir+df.IDsFile] = true, true
		df.Bytes = df.RowsIndex.Raw[len(df.RowsIndex.Raw)-1]
		man.Dates = append(man.Dates, df)
	}
	if m.quarantine != nil {
		if err := m.quarantineGz.Close(); err != nil {
			return nil, fmt.Errorf("flush quarantine: %w", err)
		}
		if err := put(QuarantineFile, m.quarantine); err != nil {
			return nil, err
		}
		man.Quarantine = QuarantineFile
	}
	if _, err := storage.DeleteStale(ctx, scratch, dir, func(k string) bool { return keep[k] }); err != nil {
		return nil, err
	}
	if err := storage.WriteJSON(ctx, scratch, dir+manifestName, man); err != nil {
		return nil, err
	}
	return man, nil
}

// finish streams a date's rows and ids files straight into scratch, with
// no local copy in between: both are written at once, bucket by bucket, so
// each goes through a pipe to its own Put.
func (m *mapper) finish(ctx context.Context, scratch storage.Bucket, day int64, rowsKey, idsKey string) (rows, ids intermediate.Index, err error) {
	type result struct {
		key string
		err error
	}
	done := make(chan result, 2)
	rr, rw := io.Pipe()
	ir, iw := io.Pipe()
	for _, p := range []struct {
		key string
		r   *io.PipeReader
	}{{rowsKey, rr}, {idsKey, ir}} {
		go func() {
			err := scratch.Put(ctx, p.key, p.r)
			p.r.CloseWithError(err) // a failed Put stops the writer
			done <- result{p.key, err}
		}()
	}
	bw, bi := bufio.NewWriterSize(rw, 256<<10), bufio.NewWriterSize(iw, 64<<10)
	rows, ids, err = m.out.Finish(day, bw, bi)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = bi.Flush()
	}
	rw.CloseWithError(err)
	iw.CloseWithError(err)
	for range 2 {
		if r := <-done; r.err != nil && err == nil {
			err = fmt.Errorf("put %s: %w", r.key, r.err)
		}
	}
	return rows, ids, err
}
