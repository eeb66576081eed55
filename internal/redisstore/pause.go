package redisstore

import (
	"context"
	"fmt"
	"time"
)

// Pause is a workflow's paused schedule: who paused it, when and why.
type Pause struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

func pausedKey(wf string) string { return keyPrefix + "paused:" + wf }

// PauseSchedule pauses wf's schedules: its SCHEDULED triggers do not
// start runs until ResumeSchedule (queues, running runs and starts on
// demand are untouched). Pausing a paused workflow records the new pause.
func (s *Runs) PauseSchedule(ctx context.Context, wf, by, reason string) (Pause, error) {
	p := Pause{By: by, At: s.now().UTC(), Reason: reason}
	if err := s.rdb.HSet(ctx, pausedKey(wf), "by", p.By, "at", p.At.Format(time.RFC3339Nano), "reason", p.Reason).Err(); err != nil {
		return p, fmt.Errorf("pause the schedules of %s: %w", wf, err)
	}
	return p, nil
}

// ResumeSchedule lets wf's schedules start runs again (from their next
// fire: the fires missed while paused are not made up).
func (s *Runs) ResumeSchedule(ctx context.Context, wf string) error {
	if err := s.rdb.Del(ctx, pausedKey(wf)).Err(); err != nil {
		return fmt.Errorf("resume the schedules of %s: %w", wf, err)
	}
	return nil
}

// SchedulePaused tells whether wf's schedules are paused, and how.
func (s *Runs) SchedulePaused(ctx context.Context, wf string) (Pause, bool, error) {
	h, err := s.rdb.HGetAll(ctx, pausedKey(wf)).Result()
	if err != nil {
		return Pause{}, false, fmt.Errorf("read the pause of %s: %w", wf, err)
	}
	if len(h) == 0 {
		return Pause{}, false, nil
	}
	p := Pause{By: h["by"], Reason: h["reason"]}
	p.At, _ = time.Parse(time.RFC3339Nano, h["at"])
	return p, true, nil
}
