package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"sluice/internal/orchestrator"
	"sluice/pipeline/bookmark"
	"sluice/pipeline/civil"
	"sluice/pipeline/schema"
	"sluice/pipeline/storage"
)

// MaxPartitionDays bounds the dates one partitions answer covers (a year:
// the grid of a year, 366 build records read).
const MaxPartitionDays = 366

// Partition states.
const (
	PartitionPublished = "published" // built, with rows
	PartitionEmpty     = "empty"     // built, without a row
	PartitionMissing   = "missing"   // never built (a hole)
)

// TablePartitions is a table's partitions over a range of dates, as its
// job's build records know them, and its schema's history.
type TablePartitions struct {
	Table    string `json:"table"`
	Workflow string `json:"workflow"`
	Step     string `json:"step"`
	Location string `json:"location"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Partitions are every date of the range, oldest first.
	Partitions []TablePartition `json:"partitions"`
	// Published, Empty and Missing count them by state; FirstBuilt and
	// LastBuilt are the table's oldest and newest built dates (beyond the
	// range too).
	Published  int           `json:"published"`
	Empty      int           `json:"empty"`
	Missing    int           `json:"missing"`
	FirstBuilt string        `json:"first_built,omitempty"`
	LastBuilt  string        `json:"last_built,omitempty"`
	Schema     *SchemaReport `json:"schema,omitempty"`
	// Checked is set when the answer asked the planner whether each
	// partition's input changed since its build (?check=inputs).
	Checked bool `json:"inputs_checked"`
}

// TablePartition is one date of a table.
type TablePartition struct {
	Date    string     `json:"date"`
	State   string     `json:"state"`
	Rows    int64      `json:"rows"`
	Files   int        `json:"files"`
	Bytes   int64      `json:"bytes"`
	BuiltAt *time.Time `json:"built_at,omitempty"`
	RunID   string     `json:"run_id,omitempty"`
	Objects int        `json:"input_objects,omitempty"`
	// Rebuild and Reason are the planner's answer (with ?check=inputs):
	// whether a run of the date would rebuild it, and why ("input objects
	// changed", "never built", …; "unchanged" when not).
	Rebuild *bool  `json:"rebuild,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// SchemaReport is a table's schema version history.
type SchemaReport struct {
	Version  int             `json:"version"`
	Columns  int             `json:"columns"`
	Versions []SchemaVersion `json:"versions"`
}

// SchemaVersion is one version of a table's schema.
type SchemaVersion struct {
	Version int       `json:"version"`
	At      time.Time `json:"at"`
	RunID   string    `json:"run_id,omitempty"`
	Columns int       `json:"columns"`
	Added   []string  `json:"added,omitempty"`
	Widened []string  `json:"widened,omitempty"`
}

// Tables lists the tables the loaded jobs publish.
func (s *Service) Tables() []orchestrator.Table { return s.Orch.Tables() }

// bucket opens a location once (Service.Open).
func (s *Service) bucket(ctx context.Context, loc string) (storage.Bucket, error) {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	if b, ok := s.buckets[loc]; ok {
		return b, nil
	}
	if s.Open == nil {
		return nil, errors.New("this scheduler opens no storage")
	}
	b, err := s.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	if s.buckets == nil {
		s.buckets = map[string]storage.Bucket{}
	}
	s.buckets[loc] = b
	return b, nil
}

// PartitionsRequest asks for a table's partitions.
type PartitionsRequest struct {
	// From and To bound the dates (both inclusive, at most
	// MaxPartitionDays); empty: the 92 dates up to the newest built one.
	From, To string
	// CheckInputs asks the planner which partitions a run would rebuild
	// (a dry run of the range: at most -max-window-days dates).
	CheckInputs bool
}

// Partitions reads a table's partitions and schema history.
func (s *Service) Partitions(ctx context.Context, id string, req PartitionsRequest) (TablePartitions, error) {
	t, err := s.Orch.Table(id)
	if err != nil {
		return TablePartitions{}, notFound(err)
	}
	out, err := s.bucket(ctx, t.Output)
	if err != nil {
		return TablePartitions{}, err
	}
	store := bookmark.NewStore(out, t.Step)
	built, err := store.BuiltDates(ctx)
	if err != nil {
		return TablePartitions{}, fmt.Errorf("list the build records of %s: %w", id, err)
	}
	win, err := partitionRange(req, built, s.now())
	if err != nil {
		return TablePartitions{}, badRequest(err)
	}
	res := TablePartitions{Table: id, Workflow: t.Workflow, Step: t.Step, Location: t.Output, From: win.Start.String(), To: win.End.String(), Partitions: []TablePartition{}}
	if len(built) > 0 {
		res.FirstBuilt, res.LastBuilt = built[0], built[len(built)-1]
	}
	var dates []string
	for _, d := range win.Dates() {
		dates = append(dates, d.String())
	}
	builds, err := store.LoadBuilds(ctx, dates)
	if err != nil {
		return TablePartitions{}, fmt.Errorf("read the build records of %s: %w", id, err)
	}
	for _, d := range dates {
		p := TablePartition{Date: d, State: PartitionMissing}
		if b, ok := builds[d]; ok {
			p.State, p.Rows, p.Files, p.Bytes, p.BuiltAt, p.RunID, p.Objects = PartitionPublished, b.Rows, len(b.Files), b.Bytes, timePtr(b.BuiltAt), b.RunID, b.Objects
			if b.Rows == 0 {
				p.State = PartitionEmpty
			}
		}
		switch p.State {
		case PartitionPublished:
			res.Published++
		case PartitionEmpty:
			res.Empty++
		default:
			res.Missing++
		}
		res.Partitions = append(res.Partitions, p)
	}
	if res.Schema, err = schemaReport(ctx, out); err != nil {
		return res, err
	}
	if req.CheckInputs {
		if err := s.checkInputs(ctx, t, win, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// partitionRange is the range of dates a partitions request covers.
func partitionRange(req PartitionsRequest, built []string, now time.Time) (civil.Window, error) {
	to := civil.DateOf(now.UTC())
	if len(built) > 0 {
		if d, err := civil.Parse(built[len(built)-1]); err == nil {
			to = d
		}
	}
	if req.To != "" {
		d, err := civil.Parse(req.To)
		if err != nil {
			return civil.Window{}, fmt.Errorf("to: %w", err)
		}
		to = d
	}
	from := to.AddDays(-91)
	if req.From != "" {
		d, err := civil.Parse(req.From)
		if err != nil {
			return civil.Window{}, fmt.Errorf("from: %w", err)
		}
		from = d
		if req.To == "" {
			to = from.AddDays(91)
		}
	}
	w := civil.Window{Start: from, End: to}
	if err := w.Validate(); err != nil {
		return w, err
	}
	if n := to.Days() - from.Days() + 1; n > MaxPartitionDays {
		return w, fmt.Errorf("from/to: %d dates; one answer covers at most %d", n, MaxPartitionDays)
	}
	return w, nil
}

func schemaReport(ctx context.Context, out storage.Bucket) (*SchemaReport, error) {
	hist, err := schema.NewStore(out).History(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the schema history: %w", err)
	}
	if len(hist) == 0 {
		return nil, nil
	}
	rep := &SchemaReport{}
	for _, v := range hist {
		sv := SchemaVersion{Version: v.Version, At: v.At.UTC(), RunID: v.RunID, Columns: len(v.Columns), Added: v.Changes.Added}
		for _, w := range v.Changes.Widened {
			sv.Widened = append(sv.Widened, w.String())
		}
		rep.Versions = append(rep.Versions, sv)
		if v.Version >= rep.Version {
			rep.Version, rep.Columns = v.Version, len(v.Columns)
		}
	}
	return rep, nil
}

// checkInputs asks the planner, for the range, which partitions a run
// would rebuild and why.
func (s *Service) checkInputs(ctx context.Context, t orchestrator.Table, win civil.Window, res *TablePartitions) error {
	if err := s.Orch.CheckWindow(t.Workflow, win); err != nil {
		return badRequest(fmt.Errorf("check=inputs: %w", err))
	}
	steps, err := s.dryRun(ctx, t.Workflow, win, false)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if st.Step != t.Step {
			continue
		}
		byDate := map[string]int{}
		for i, p := range res.Partitions {
			byDate[p.Date] = i
		}
		for _, p := range st.Partitions {
			if i, ok := byDate[p.Date]; ok {
				rebuild := p.Rebuild
				res.Partitions[i].Rebuild, res.Partitions[i].Reason = &rebuild, p.Reason
			}
		}
		res.Checked = true
	}
	return nil
}

// bucketCache is the Service's opened buckets.
type bucketCache struct {
	bucketsMu sync.Mutex
	buckets   map[string]storage.Bucket
}
