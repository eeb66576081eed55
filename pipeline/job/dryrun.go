package job

import (
	"context"
	"fmt"
	"math"
	"time"

	"sluice/pipeline/fault"
	"sluice/pipeline/intermediate"
)

// DryRun is what a run of the step would do, as the planner of a real run
// decides it, with nothing written and nothing built.
type DryRun struct {
	// Partitions are the window's partitions in date order, rebuilt or
	// left as they are.
	Partitions []DryRunPartition `json:"partitions"`
	// InputObjects and InputBytes (compressed) are what the map would read.
	InputObjects int   `json:"input_objects"`
	InputBytes   int64 `json:"input_bytes"`
	// MapTasks are the shards the plan would cut, at ShardBytes each for
	// the live fleet's Slots.
	MapTasks   int   `json:"map_tasks"`
	ShardBytes int64 `json:"shard_bytes"`
	Slots      int   `json:"slots"`
	// Files is an estimate of the files the run writes (the real number
	// is decided after the map, from the rows it found): per rebuilt
	// partition, its last build's output over target_file_bytes, or for a
	// first build its share of the input; at least one each. (The reduce
	// and encode tasks are cut after the map too, for the fleet then.)
	Files int `json:"files_estimated"`
	// Refused is the plan's refusal, when it would refuse (the shrink
	// guard on an empty input listing); the step would fail.
	Refused string `json:"refused,omitempty"`
	// Warning says what looks wrong: no input objects for the window (a
	// missing or mistyped input location, or a window with no data).
	Warning string `json:"warning,omitempty"`
}

// DryRunPartition is one partition of a dry run.
type DryRunPartition struct {
	Date    string `json:"date"`
	Rebuild bool   `json:"rebuild"`
	// Reason is why it is rebuilt (bookmark.Reason…), or "unchanged".
	Reason    string     `json:"reason"`
	Files     int        `json:"files_estimated,omitempty"`
	LastBuild *LastBuild `json:"last_build,omitempty"`
	// VanishedInputs are input objects of its last build the input no
	// longer holds (at most 10 named; VanishedCount counts them all): the
	// run refuses them without -allow-shrink.
	VanishedInputs []string `json:"vanished_inputs,omitempty"`
	VanishedCount  int      `json:"vanished_count,omitempty"`
}

// LastBuild is what the bookmarks know of a partition's last build.
type LastBuild struct {
	RunID   string    `json:"run_id"`
	BuiltAt time.Time `json:"built_at"`
	Rows    int64     `json:"rows"`
	Files   int       `json:"files"`
	Bytes   int64     `json:"bytes"`
}

// DryRun asks the planner what the step would do over its window.
func (s *Step) DryRun(ctx context.Context) (DryRun, error) {
	p, _, builds, err := s.decide(ctx)
	var out DryRun
	if err != nil {
		if !fault.IsPermanent(err) {
			return out, err
		}
		out.Refused = err.Error()
	}
	out.InputObjects, out.InputBytes, out.MapTasks, out.ShardBytes, out.Slots = p.Objects, p.Bytes, p.Shards, p.ShardBytes, p.Slots
	if p.Objects == 0 && out.Refused == "" {
		out.Warning = fmt.Sprintf("no input objects in %s under %s for %s: check the job's input location (the partitions would be emptied)",
			s.In.Location(), sourcePaths(s.Spec), s.Window)
	}
	for _, d := range s.Window.Dates() {
		date := d.String()
		part := DryRunPartition{Date: date, Reason: "unchanged"}
		if b, ok := builds[date]; ok {
			part.LastBuild = &LastBuild{RunID: b.RunID, BuiltAt: b.BuiltAt, Rows: b.Rows, Files: len(b.Files), Bytes: b.Bytes}
		}
		if reason, ok := p.Rebuild[date]; ok {
			part.Rebuild, part.Reason = true, reason
			est := float64(p.Bytes) / float64(len(p.Dates))
			if part.LastBuild != nil && part.LastBuild.Bytes > 0 {
				est = float64(part.LastBuild.Bytes)
			}
			part.Files = int(min(max(math.Round(est/float64(s.Spec.TargetFileBytes)), 1), intermediate.VBuckets))
			out.Files += part.Files
		}
		if v := p.Vanished[date]; len(v) > 0 {
			part.VanishedInputs, part.VanishedCount = v[:min(len(v), maxNamed)], len(v)
		}
		out.Partitions = append(out.Partitions, part)
	}
	return out, nil
}
