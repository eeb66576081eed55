package segmentgen

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	_ "time/tzdata" // the Pacific day and device zones must not depend on the host's zoneinfo

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"sluice/pipeline/storage"
)

const dayMs = 24 * 60 * 60 * 1000

// Summary is what Generate wrote and what a correct ETL must find in it.
type Summary struct {
	Folders []Folder // per source per received-day folder, sources in Config order, days ascending
	// Expected holds, per Pacific (America/Los_Angeles) date of the event
	// timestamp, the number of distinct valid messageIds over all sources.
	// Valid means: a JSON object with a messageId and a parseable timestamp.
	Expected        []DateCount
	Lines           int64 // all lines written
	Events          int64 // distinct valid events (= sum of Expected)
	Duplicates      int64 // extra copies of valid events
	Late            int64 // valid events received 1-3 days after their timestamp
	Malformed       int64 // lines that are not valid events
	Bytes           int64 // uncompressed
	CompressedBytes int64
}

// Folder is one received-day folder of one source.
type Folder struct {
	Source string
	Day    string // UTC day of receivedAt, YYYY-MM-DD
	Prefix string // e.g. segment-logs/ios/1709942400000/
	Files  []File
	Lines  int64
}

// File is one written object.
type File struct {
	Key             string
	Lines           int64
	Bytes           int64 // uncompressed
	CompressedBytes int64
}

// DateCount is the expected number of distinct valid messageIds for a
// Pacific date, in total and per source id.
type DateCount struct {
	Date       string // YYYY-MM-DD
	MessageIDs int64
	BySource   map[string]int64
}

// ExpectedFor returns the expected distinct messageIds for date (YYYY-MM-DD).
func (s Summary) ExpectedFor(date string) int64 {
	for _, d := range s.Expected {
		if d.Date == date {
			return d.MessageIDs
		}
	}
	return 0
}

// line kinds
const (
	kindValid uint8 = iota
	kindNotJSON
	kindNoMessageID
	kindBadTimestamp
)

// timestamp formats for the "timestamp" field
const (
	tsMillisZ uint8 = iota
	tsSecondsZ
	tsOffset
)

// event is the plan of one logical event; render rebuilds its content from
// seed, so the plan stays small even for millions of events.
type event struct {
	seed   uint64
	ts     int64 // unix ms of the "timestamp" field
	recv   int64 // unix ms of receivedAt at first delivery
	device int32
	src    int16
	kind   uint8
	tsFmt  uint8
	etype  uint8 // evScreen, evIdentify, ...
	full   bool  // every optional field, see plan
	late   bool
}

// line is one line to write: an event, possibly a duplicate received later.
type line struct {
	ev   int32
	recv int64
	seq  int32
}

type fileKey struct {
	src int
	day int64 // UTC midnight, unix ms
	idx int
}

// Generate writes sample Segment logs into b as cfg says and returns what it
// wrote. Objects are rendered and uploaded in parallel.
func Generate(ctx context.Context, b storage.Bucket, cfg Config) (Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Summary{}, fmt.Errorf("segmentgen config: %w", err)
	}
	g, err := newGenerator(cfg)
	if err != nil {
		return Summary{}, err
	}
	g.plan()
	return g.write(ctx, b)
}

type generator struct {
	cfg         Config
	pacific     *time.Location
	zones       []zone
	devices     [][]device // per source
	products    []product
	fullProduct int // index of the product the covering events use
	events      []event
	files       map[fileKey][]line
}

type zone struct {
	name string
	loc  *time.Location
}

func newGenerator(cfg Config) (*generator, error) {
	g := &generator{cfg: cfg, files: map[fileKey][]line{}, products: newProducts(cfg.Seed)}
	g.fullProduct = fullOrderProduct(g.products)
	var err error
	if g.pacific, err = time.LoadLocation("America/Los_Angeles"); err != nil {
		return nil, fmt.Errorf("load pacific zone: %w", err)
	}
	// Most users are in the Pacific zone; the others make originalTimestamp
	// and the offset-style timestamps interesting.
	for _, n := range []string{"America/Los_Angeles", "America/Los_Angeles", "America/Los_Angeles",
		"America/New_York", "America/Chicago", "Asia/Tokyo", "Europe/London", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(n)
		if err != nil {
			return nil, fmt.Errorf("load zone %s: %w", n, err)
		}
		g.zones = append(g.zones, zone{n, loc})
	}
	for _, s := range cfg.Sources {
		n := max(20, cfg.EventsPerDay/15)
		devs := make([]device, n)
		for i := range devs {
			r := newRNG(uint64(cfg.Seed), hashString(s.ID), uint64(i), 0xde51ce)
			devs[i] = newDevice(&r, s.Platform, g.zones, i == 0)
		}
		g.devices = append(g.devices, devs)
	}
	return g, nil
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// plan decides every event's times and the file each copy lands in.
func (g *generator) plan() {
	cfg := g.cfg
	y, m, d := cfg.Start.Date()
	var seq int32
	malformedKind := uint8(0)
	for si, s := range cfg.Sources {
		for day := range cfg.Days {
			start := time.Date(y, m, d+day, 0, 0, 0, 0, g.pacific).UnixMilli()
			end := time.Date(y, m, d+day+1, 0, 0, 0, 0, g.pacific).UnixMilli() // 23h or 25h on DST days
			r := newRNG(uint64(cfg.Seed), hashString(s.ID), uint64(day), 0x91a4)
			for i := range cfg.EventsPerDay {
				ev := event{seed: r.next(), src: int16(si), device: int32(r.intn(len(g.devices[si]))), etype: pickEventType(&r)}
				if i < int(numEventTypes) {
					// The day's first events are one of each type with every
					// optional field, on the device that has every optional
					// context field: each partition then has every column
					// with the same type, even in a run of a few events a day.
					ev.etype, ev.full, ev.device = uint8(i), true, 0
				}
				// 4% of events within ten minutes of either midnight, so
				// Pacific-versus-UTC date mistakes show.
				const edge = 10 * 60 * 1000
				switch u := r.float(); {
				case u < 0.02:
					ev.ts = start + r.between(0, edge)
				case u < 0.04:
					ev.ts = end - 1 - r.between(0, edge)
				default:
					ev.ts = r.between(start, end-1)
				}
				switch u := r.float(); {
				case u < 0.12:
					ev.tsFmt = tsOffset
				case u < 0.35:
					ev.tsFmt = tsSecondsZ
				default:
					ev.tsFmt = tsMillisZ
				}
				if ev.tsFmt != tsMillisZ {
					ev.ts -= ev.ts % 1000 // a format without millis must not move the instant
				}
				if r.chance(cfg.LateRate) {
					ev.late = true
					ev.recv = ev.ts + r.between(1, 3)*dayMs + r.between(0, 6*3600*1000)
				} else {
					ev.recv = ev.ts + r.between(50, 30_000)
				}
				dup := r.chance(cfg.DuplicateRate)
				dupNextDay := r.chance(0.5)
				bad := r.chance(cfg.MalformedRate)
				badSeed, badRecv := r.next(), ev.recv+r.between(1, 5000)

				idx := int32(len(g.events))
				g.events = append(g.events, ev)
				g.addLine(si, idx, ev.recv, &seq, -1)
				if dup {
					if dupNextDay || cfg.FilesPerDay == 1 {
						// Redelivered in a later day's folder.
						g.addLine(si, idx, ev.recv+dayMs+r.between(0, 3600*1000), &seq, -1)
					} else {
						// Same folder, another file.
						g.addLine(si, idx, ev.recv, &seq, 1)
					}
				}
				if bad {
					// Cycle through the kinds so every kind appears even
					// when there are only a few malformed lines.
					malformedKind = malformedKind%3 + 1
					bev := event{seed: badSeed, ts: ev.ts, recv: badRecv, device: ev.device, src: ev.src, kind: malformedKind, etype: ev.etype}
					bidx := int32(len(g.events))
					g.events = append(g.events, bev)
					g.addLine(si, bidx, badRecv, &seq, -1)
				}
			}
		}
	}
}

// addLine files a copy of event ev received at recv. shift > 0 moves it to
// another file of the same folder (a duplicate delivery).
func (g *generator) addLine(src int, ev int32, recv int64, seq *int32, shift int) {
	day := recv - recv%dayMs
	idx := int((recv - day) * int64(g.cfg.FilesPerDay) / dayMs)
	if shift > 0 {
		idx = (idx + shift) % g.cfg.FilesPerDay
	}
	k := fileKey{src, day, idx}
	g.files[k] = append(g.files[k], line{ev: ev, recv: recv, seq: *seq})
	*seq++
}

func (g *generator) fileName(k fileKey) string {
	src := g.cfg.Sources[k.src].ID
	start := k.day + int64(k.idx)*dayMs/int64(g.cfg.FilesPerDay)
	r := newRNG(uint64(g.cfg.Seed), hashString(src), uint64(k.day), uint64(k.idx), 0xf11e)
	var b []byte
	b = append(b, g.cfg.Prefix...)
	b = append(b, src...)
	b = append(b, '/')
	b = strconv.AppendInt(b, k.day, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, start, 10)
	b = append(b, '.')
	b = appendHex(b, r.next(), 12)
	b = append(b, ".gz"...)
	return string(b)
}

type fileWriter struct {
	raw  []byte
	gz   *gzip.Writer
	comp bytes.Buffer
}

func (g *generator) write(ctx context.Context, b storage.Bucket) (Summary, error) {
	keys := make([]fileKey, 0, len(g.files))
	for k := range g.files {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a.src != c.src {
			return a.src < c.src
		}
		if a.day != c.day {
			return a.day < c.day
		}
		return a.idx < c.idx
	})
	results := make([]File, len(keys))
	pool := sync.Pool{New: func() any {
		gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return &fileWriter{gz: gz}
	}}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(g.cfg.Concurrency)
	for i, k := range keys {
		eg.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			fw := pool.Get().(*fileWriter)
			defer pool.Put(fw)
			lines := g.files[k]
			slices.SortFunc(lines, func(a, c line) int {
				if a.recv != c.recv {
					if a.recv < c.recv {
						return -1
					}
					return 1
				}
				return int(a.seq - c.seq)
			})
			rd := renderer{g: g}
			fw.comp.Reset()
			fw.gz.Reset(&fw.comp)
			var raw int64
			for _, l := range lines {
				fw.raw = rd.appendLine(fw.raw[:0], g.events[l.ev], l.recv)
				raw += int64(len(fw.raw))
				if _, err := fw.gz.Write(fw.raw); err != nil {
					return fmt.Errorf("compress: %w", err)
				}
			}
			if err := fw.gz.Close(); err != nil {
				return fmt.Errorf("compress: %w", err)
			}
			key := g.fileName(k)
			results[i] = File{Key: key, Lines: int64(len(lines)), Bytes: raw, CompressedBytes: int64(fw.comp.Len())}
			if err := b.Put(ctx, key, bytes.NewReader(fw.comp.Bytes())); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return Summary{}, fmt.Errorf("segmentgen: %w", err)
	}
	return g.summarise(keys, results), nil
}

func (g *generator) summarise(keys []fileKey, files []File) Summary {
	s := Summary{}
	for i, k := range keys {
		src := g.cfg.Sources[k.src].ID
		day := time.UnixMilli(k.day).UTC().Format("2006-01-02")
		if n := len(s.Folders); n == 0 || s.Folders[n-1].Source != src || s.Folders[n-1].Day != day {
			s.Folders = append(s.Folders, Folder{Source: src, Day: day,
				Prefix: g.cfg.Prefix + src + "/" + strconv.FormatInt(k.day, 10) + "/"})
		}
		f := &s.Folders[len(s.Folders)-1]
		f.Files = append(f.Files, files[i])
		f.Lines += files[i].Lines
		s.Lines += files[i].Lines
		s.Bytes += files[i].Bytes
		s.CompressedBytes += files[i].CompressedBytes
	}
	byDate := map[string]*DateCount{}
	for _, ev := range g.events {
		if ev.kind != kindValid {
			s.Malformed++
			continue
		}
		s.Events++
		if ev.late {
			s.Late++
		}
		date := time.UnixMilli(ev.ts).In(g.pacific).Format("2006-01-02")
		dc := byDate[date]
		if dc == nil {
			dc = &DateCount{Date: date, BySource: map[string]int64{}}
			byDate[date] = dc
		}
		dc.MessageIDs++
		dc.BySource[g.cfg.Sources[ev.src].ID]++
	}
	s.Duplicates = s.Lines - s.Events - s.Malformed
	for _, dc := range byDate {
		s.Expected = append(s.Expected, *dc)
	}
	sort.Slice(s.Expected, func(i, j int) bool { return s.Expected[i].Date < s.Expected[j].Date })
	return s
}
