// Package notify tells people when a run ends: a webhook POST with a
// small JSON body (workflow, run, window, state, the failed step and its
// error, a console link), or a Slack-compatible incoming-webhook message,
// retried with backoff. The scheduler watches the run store for runs that
// ended; each run's end is claimed once in Redis, so several scheduler
// replicas send one notice.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/redisstore"
	"sluice/pipeline/workflow"
)

// Formats of the body.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Config says where and when to send.
type Config struct {
	// URLs receive every notice. They may hold secrets (Slack's do), so
	// they are never logged, only their host.
	URLs []string
	// Format is FormatJSON (default) or FormatSlack.
	Format string
	// OnSuccess also notifies runs that SUCCEEDED; FAILED and CANCELLED
	// runs always are.
	OnSuccess bool
	// ConsoleURL is the console's base URL for links (http://host:8080).
	ConsoleURL string
	// Every is how often the run store is checked (default 5 s).
	Every time.Duration
	// Attempts per URL (default 6) and the first backoff, doubling
	// (default 1 s).
	Attempts int
	Backoff  time.Duration
	Client   *http.Client
	Log      *slog.Logger
}

// Notice is the JSON body of a notice.
type Notice struct {
	Workflow   string    `json:"workflow"`
	RunID      string    `json:"run_id"`
	Window     Window    `json:"window"`
	State      string    `json:"state"`
	Trigger    string    `json:"trigger"`
	FailedStep string    `json:"failed_step,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	EndedAt    time.Time `json:"ended_at"`
	ConsoleURL string    `json:"console_url"`
}

// Window is a run's dates.
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Notifier sends notices for ended runs.
type Notifier struct {
	cfg  Config
	orch *orchestrator.Orchestrator
}

// New returns a notifier; Run watches.
func New(cfg Config, orch *orchestrator.Orchestrator) (*Notifier, error) {
	for _, u := range cfg.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("-notify-url (SLUICE_NOTIFY_URL): %s is not an http(s) URL", config.RedactText(hostOnly(u)))
		}
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatJSON
	case FormatJSON, FormatSlack:
	default:
		return nil, fmt.Errorf("-notify-format (SLUICE_NOTIFY_FORMAT): %q is not json or slack", cfg.Format)
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, orch: orch}, nil
}

// Run checks for ended runs every Config.Every until ctx ends. Runs that
// ended more than ten minutes before it started are left alone (their
// notices were sent, or were due before this scheduler ran).
func (n *Notifier) Run(ctx context.Context) {
	since := time.Now().Add(-10 * time.Minute)
	tick := time.NewTicker(n.cfg.Every)
	defer tick.Stop()
	for {
		if err := n.check(ctx, since); err != nil && ctx.Err() == nil {
			n.cfg.Log.Warn("checking runs for notices failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Notifier) check(ctx context.Context, since time.Time) error {
	for _, name := range n.orch.Workflows() {
		runs, err := n.orch.Runs(ctx, name, 20)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.State == workflow.Running || r.Ended.Before(since) || (r.State == workflow.Succeeded && !n.cfg.OnSuccess) {
				continue
			}
			claimed, err := n.orch.ClaimNotice(ctx, r.ID)
			if err != nil {
				return err
			}
			if claimed {
				n.send(ctx, n.notice(r))
			}
		}
	}
	return nil
}

func (n *Notifier) notice(r redisstore.Run) Notice {
	nt := Notice{Workflow: r.Workflow, RunID: r.ID, Window: Window{r.Window.Start.String(), r.Window.End.String()}, State: string(r.State),
		Trigger: r.Trigger, CreatedAt: r.Created.UTC(), EndedAt: r.Ended.UTC(), ConsoleURL: n.cfg.ConsoleURL + "/console/runs/" + r.ID}
	if wf, err := n.orch.Workflow(r.Workflow); err == nil {
		for _, s := range wf.Steps {
			if rec := r.Steps[s.Name]; rec.State == workflow.Failed || (rec.State == workflow.Cancelled && nt.FailedStep == "") {
				nt.FailedStep, nt.Error = s.Name, config.RedactText(rec.Error)
				if rec.State == workflow.Failed {
					break
				}
			}
		}
	}
	return nt
}

// Body is the request body of a notice in the configured format.
func (n *Notifier) Body(nt Notice) []byte {
	if n.cfg.Format != FormatSlack {
		b, _ := json.Marshal(nt)
		return b
	}
	text := fmt.Sprintf("Sluice run of *%s* %s..%s *%s*", nt.Workflow, nt.Window.Start, nt.Window.End, nt.State)
	if nt.FailedStep != "" {
		text += fmt.Sprintf(" at step `%s`: %s", nt.FailedStep, truncate(nt.Error, 500))
	}
	text += fmt.Sprintf("\n<%s|%s>", nt.ConsoleURL, nt.RunID)
	b, _ := json.Marshal(map[string]string{"text": text})
	return b
}

func (n *Notifier) send(ctx context.Context, nt Notice) {
	body := n.Body(nt)
	for _, u := range n.cfg.URLs {
		attempt, err := n.post(ctx, u, body)
		if err != nil {
			n.cfg.Log.Error("run notice not delivered", "run", nt.RunID, "state", nt.State, "to", hostOnly(u), "attempts", attempt, "err", err)
			continue
		}
		n.cfg.Log.Info("run notice sent", "run", nt.RunID, "state", nt.State, "to", hostOnly(u), "attempts", attempt)
	}
}

// errPermanent is an answer no retry changes (4xx other than 408 and 429).
var errPermanent = errors.New("refused")

func (n *Notifier) post(ctx context.Context, u string, body []byte) (int, error) {
	delay := n.cfg.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = n.postOnce(ctx, u, body); err == nil || errors.Is(err, errPermanent) || attempt == n.cfg.Attempts {
			return attempt, err
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (n *Notifier) postOnce(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-scheduler")
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		// The URL (with its secret) is in a *url.Error: keep the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return ue.Err
		}
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return fmt.Errorf("%w: %s", errPermanent, resp.Status)
	}
	return fmt.Errorf("answered %s", resp.Status)
}

// hostOnly is a URL without its path and credentials, for logs.
func hostOnly(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Scheme + "://" + p.Host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
