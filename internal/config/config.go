// Package config is how both commands are configured: one struct per
// command (Common for what every subcommand shares, Worker for the worker)
// registers its flags, Parse reads them from the command line and then from
// the environment (flag -x-y is SLUICE_X_Y: github.com/peterbourgon/ff, so
// that every flag has its variable and the two cannot drift), and validate
// names the flag and its variable of a bad setting, at start.
package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// EnvPrefix starts every setting's environment variable.
const EnvPrefix = "SLUICE"

// Parse reads fs's flags from args, then those not given from the
// environment. -h gives flag.ErrHelp (wrapped).
func Parse(fs *flag.FlagSet, args []string) error {
	return ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix))
}

// EnvVar is the environment variable of a flag.
func EnvVar(flagName string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// setting names a flag and its variable in messages: "-redis-url (SLUICE_REDIS_URL)".
func setting(flagName string) string { return "-" + flagName + " (" + EnvVar(flagName) + ")" }

// Setting names a flag and its variable in messages of other packages:
// "-max-window-days (SLUICE_MAX_WINDOW_DAYS)".
func Setting(flagName string) string { return setting(flagName) }

// Common are the settings every subcommand takes.
type Common struct {
	RedisURL  string
	Workflows string
	S3        s3store.Options
	LogLevel  string
	LogFormat string
	// MaxWindowDays is the most dates a run's window may hold: wider
	// starts and dry runs are refused, and so is a schedule whose windows
	// are wider (orchestrator.CheckWindow).
	MaxWindowDays int

	readResumes int
}

// Register adds the common flags to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	c.RedisURL = "redis://127.0.0.1:6379/0"
	fs.Var((*secretURL)(&c.RedisURL), "redis-url", "Redis URL: redis://[:password@]host:port/db, rediss://… for TLS, redis-sentinel://[:password@]host:port[,host2:port2]/master[?db=N&sentinel_password=…] (printed with the password as "+Redacted+")")
	fs.StringVar(&c.Workflows, "workflows", "workflows", "workflow YAML file, or a folder of them")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", "", "S3 endpoint URL; empty uses AWS_ENDPOINT_URL_S3 or AWS")
	fs.StringVar(&c.S3.Region, "s3-region", "", "S3 region; empty uses AWS_REGION, else us-east-1")
	fs.BoolVar(&c.S3.PathStyle, "s3-path-style", false, "address buckets path-style, as most self-hosted S3 servers need")
	fs.IntVar(&c.readResumes, "s3-read-resumes", s3store.DefaultReadResumes, "how many times an S3 download that breaks mid-stream resumes from where it broke before the read fails; 0: never")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.IntVar(&c.MaxWindowDays, "max-window-days", DefaultMaxWindowDays, fmt.Sprintf("the most dates a run's window may hold (1 to %d): wider starts and dry runs (API, console, start) are refused, and so is a schedule with a wider window_days", MaxWindowDaysLimit))
}

// DefaultMaxWindowDays is how many dates a run's window may hold by
// default: a quarter, enough for a backfill in a few runs, small enough
// that a dry run or a start of a mistyped window (0001-01-01..9999-12-31)
// stays cheap. MaxWindowDaysLimit bounds the setting (ten years).
const (
	DefaultMaxWindowDays = 92
	MaxWindowDaysLimit   = 3660
)

// Validate checks the settings that need no connection.
func (c *Common) Validate() error {
	if _, err := c.Logger(); err != nil {
		return err
	}
	if err := c.validateS3(); err != nil {
		return err
	}
	if c.MaxWindowDays < 1 || c.MaxWindowDays > MaxWindowDaysLimit {
		return fmt.Errorf("%s: must be from 1 to %d, got %d", setting("max-window-days"), MaxWindowDaysLimit, c.MaxWindowDays)
	}
	_, err := c.Redis()
	return err
}

func (c *Common) validateS3() error {
	if err := s3store.CheckEndpoint(c.S3.Endpoint); err != nil {
		return fmt.Errorf("%s: %w", setting("s3-endpoint"), err)
	}
	if err := s3store.CheckRegion(c.S3.Region); err != nil {
		return fmt.Errorf("%s: %w", setting("s3-region"), err)
	}
	if c.readResumes < 0 {
		return fmt.Errorf("%s: must be 0 or more, got %d", setting("s3-read-resumes"), c.readResumes)
	}
	c.S3.ReadResumes = c.readResumes
	if c.readResumes == 0 {
		c.S3.ReadResumes = -1 // s3store's "none"; its zero is the default
	}
	return nil
}

// Logger builds the slog logger the settings ask for, and makes it go-redis's
// logger too.
func (c *Common) Logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("%s: %q is not debug, info, warn or error", setting("log-level"), c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch c.LogFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	default:
		return nil, fmt.Errorf("%s: %q is not text or json", setting("log-format"), c.LogFormat)
	}
	// go-redis logs (a sentinel's new master, failed dials) through it too,
	// at debug level: errors reach the caller, and readiness probes make a
	// client each.
	redis.SetLogger(redisLog{log.With("component", "go-redis")})
	return log, nil
}

// redisLog adapts slog to go-redis's logger.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// Redis parses the Redis URL into the connection asynq and the
// orchestrator share.
func (c *Common) Redis() (Redis, error) {
	r, err := ParseRedisURL(c.RedisURL)
	if err != nil {
		return Redis{}, fmt.Errorf("%s: %w", setting("redis-url"), err)
	}
	return r, nil
}

// ConnectRedis parses the Redis URL and checks that Redis answers a PING
// within the URL's timeouts: what both commands do at start, so that a
// wrong address or password fails at once, naming the setting and the
// address.
func (c *Common) ConnectRedis(ctx context.Context) (Redis, error) {
	r, err := c.Redis()
	if err != nil {
		return r, err
	}
	if err := r.Ping(ctx, 0); err != nil {
		return Redis{}, fmt.Errorf("%s: %w", setting("redis-url"), err)
	}
	return r, nil
}

// secretURL is a flag.Value holding a URL that prints redacted, so that
// neither -h (a flag's default) nor anything listing the flags shows its
// password.
type secretURL string

func (s *secretURL) String() string {
	if s == nil {
		return ""
	}
	return RedactURL(string(*s))
}

func (s *secretURL) Set(v string) error { *s = secretURL(v); return nil }

// LoadWorkflows reads one workflow file or every *.yaml / *.yml in a folder.
func (c *Common) LoadWorkflows() (map[string]*workflow.Workflow, error) {
	return LoadWorkflows(c.Workflows)
}

// LoadWorkflows reads one workflow file or every *.yaml / *.yml in a folder.
func LoadWorkflows(path string) (map[string]*workflow.Workflow, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting("workflows"), err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", setting("workflows"), err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml files in %s", setting("workflows"), path)
	}
	out := map[string]*workflow.Workflow{}
	var errs []error
	for _, f := range files {
		wf, err := workflow.Load(f, ValidateJob)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := out[wf.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name: workflow %q is declared twice", f, wf.Name))
		}
		out[wf.Name] = wf
	}
	return out, errors.Join(errs...)
}

// JobTransform decodes a job step's transform block.
func JobTransform(j *workflow.JobSpec) (transform.Spec, error) {
	spec, err := DecodeJobTransform(j)
	if err != nil {
		return spec, err
	}
	if j.Iceberg() && spec.Format != "parquet" {
		// Iceberg's data files here are Sluice's Parquet files.
		return spec, fmt.Errorf("format: %q: an Iceberg table (table.format iceberg) is written as parquet", spec.Format)
	}
	return spec, spec.Validate()
}

// DecodeJobTransform decodes a job step's transform block over the
// defaults, refusing unknown fields, without validating it.
func DecodeJobTransform(j *workflow.JobSpec) (transform.Spec, error) {
	spec := transform.DefaultSpec()
	if j.Transform.Kind == 0 {
		return spec, nil
	}
	// compression's default follows the format: snappy for Parquet, none
	// for CSV (which takes gzip or none).
	spec.Compression = ""
	if err := decodeStrict(&j.Transform, &spec); err != nil {
		return spec, err
	}
	if spec.Compression == "" {
		spec.Compression = "snappy"
		if spec.Format == "csv" {
			spec.Compression = "none"
		}
	}
	return spec, nil
}

// ValidateJob is the workflow loader's check of a job's transform block.
func ValidateJob(j *workflow.JobSpec) error {
	_, err := JobTransform(j)
	return err
}

// decodeStrict decodes a YAML node refusing unknown fields, so that a typo
// in a job spec fails at start instead of being ignored.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}
