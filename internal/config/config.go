// Package config is the settings both commands share (Redis, workflow files,
// S3 client, logging), read from flags with environment fallbacks, and the
// code that turns them into connected clients. A bad setting fails at start
// with a message that names the flag and its environment variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"sluice/pipeline/storage/s3store"
	"sluice/pipeline/transform"
	"sluice/pipeline/workflow"
)

// Common are the settings every subcommand takes.
type Common struct {
	RedisURL  string
	Workflows string
	S3        s3store.Options
	LogLevel  string
	LogFormat string
}

// Env returns the environment variable name, or def when it is unset or empty.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// Register adds the common flags to fs, with defaults from the environment.
func (c *Common) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisURL, "redis", Env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL: redis://[:password@]host:port/db, rediss://… for TLS, redis-sentinel://[:password@]host:port[,host2:port2]?master=name (env SLUICE_REDIS_URL)")
	fs.StringVar(&c.Workflows, "workflows", Env("SLUICE_WORKFLOWS", "workflows"), "workflow YAML file, or a folder of them (env SLUICE_WORKFLOWS)")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", Env("SLUICE_S3_ENDPOINT", ""), "S3 endpoint URL; empty uses AWS_ENDPOINT_URL_S3 or AWS (env SLUICE_S3_ENDPOINT)")
	fs.StringVar(&c.S3.Region, "s3-region", Env("SLUICE_S3_REGION", ""), "S3 region; empty uses AWS_REGION, else us-east-1 (env SLUICE_S3_REGION)")
	pathStyle, _ := strconv.ParseBool(Env("SLUICE_S3_PATH_STYLE", "false"))
	fs.BoolVar(&c.S3.PathStyle, "s3-path-style", pathStyle, "address buckets path-style, as most self-hosted S3 servers need (env SLUICE_S3_PATH_STYLE)")
	fs.StringVar(&c.LogLevel, "log-level", Env("SLUICE_LOG_LEVEL", "info"), "debug, info, warn or error (env SLUICE_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", Env("SLUICE_LOG_FORMAT", "text"), "text or json (env SLUICE_LOG_FORMAT)")
}

// Logger builds the slog logger the settings ask for.
func (c *Common) Logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("-log-level (SLUICE_LOG_LEVEL): %q is not debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format (SLUICE_LOG_FORMAT): %q is not text or json", c.LogFormat)
}

// Redis parses the Redis URL into asynq's connection option and a go-redis
// client for Sluice's own keys, connected to the same server.
func (c *Common) Redis() (asynq.RedisConnOpt, redis.UniversalClient, error) {
	opt, err := asynq.ParseRedisURI(c.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("-redis (SLUICE_REDIS_URL): %w", err)
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, nil, fmt.Errorf("-redis (SLUICE_REDIS_URL): unsupported connection type %T", opt)
	}
	return opt, rdb, nil
}

// LoadWorkflows reads one workflow file or every *.yaml / *.yml in a folder.
func (c *Common) LoadWorkflows() (map[string]*workflow.Workflow, error) {
	return LoadWorkflows(c.Workflows)
}

// LoadWorkflows reads one workflow file or every *.yaml / *.yml in a folder.
func LoadWorkflows(path string) (map[string]*workflow.Workflow, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-workflows (SLUICE_WORKFLOWS): %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("-workflows (SLUICE_WORKFLOWS): %w", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("-workflows (SLUICE_WORKFLOWS): no .yaml files in %s", path)
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
	spec := transform.DefaultSpec()
	if j.Transform.Kind == 0 {
		return spec, spec.Validate()
	}
	if err := decodeStrict(&j.Transform, &spec); err != nil {
		return spec, err
	}
	return spec, spec.Validate()
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
