package deploy

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"sluice/internal/config"
	"sluice/internal/orchestrator"
	"sluice/internal/testenv"
)

var binDir string

// TestMain builds the two commands, whose -h output is the truth about
// their flags, and shares one redis-server among the tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-deploy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, name := range []string{"scheduler", "worker"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = repoRoot()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", name, err)
			os.Exit(1)
		}
	}
	defer os.RemoveAll(dir)
	testenv.Main(m)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// workflowFiles are the example workflows: file name → contents.
func workflowFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(), "workflows", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no workflow files: %v", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

// newOrchestrator loads the example workflows over a fresh Redis database.
func newOrchestrator(t *testing.T) (*orchestrator.Orchestrator, asynq.RedisConnOpt) {
	t.Helper()
	wfs, err := config.LoadWorkflows(filepath.Join(repoRoot(), "workflows"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Workflows: wfs, Redis: opt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Close() })
	return orch, opt
}

var (
	flagsMu    sync.Mutex
	flagsCache = map[string][]string{}
	flagLine   = regexp.MustCompile(`(?m)^  -([^\s=]+)`)
)

// commandFlags are the flags a command takes, as its -h prints them:
// "worker", or "scheduler serve" (a subcommand).
func commandFlags(t *testing.T, command string) []string {
	t.Helper()
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[command]; ok {
		return f
	}
	args := strings.Fields(command)
	out, _ := exec.Command(filepath.Join(binDir, args[0]), append(args[1:], "-h")...).CombinedOutput() // -h exits non-zero for subcommands
	var names []string
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s -h lists no flags:\n%s", command, out)
	}
	flagsCache[command] = names
	return names
}

// commandOf reads a container's command line: the command ("worker",
// "scheduler serve") and the flags it passes.
func commandOf(t *testing.T, argv []string) (command string, flags []string) {
	t.Helper()
	if len(argv) == 0 || (argv[0] != "worker" && argv[0] != "scheduler") {
		t.Fatalf("command %q runs neither worker nor scheduler", argv)
	}
	command, rest := argv[0], argv[1:]
	if argv[0] == "scheduler" {
		if len(argv) < 2 {
			t.Fatalf("command %q names no scheduler subcommand", argv)
		}
		command, rest = "scheduler "+argv[1], argv[2:]
	}
	for _, a := range rest {
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			flags = append(flags, name)
		}
	}
	return command, flags
}

// Variables read by what Sluice links (the AWS SDK's credential and
// endpoint chain, the Go runtime) rather than by its flags.
var runtimeEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_PROFILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REQUEST_CHECKSUM_CALCULATION",
	"TMPDIR", "GOMEMLIMIT", "GOGC", "GOMAXPROCS",
}

var workflowVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// checkCommand reports, for one container or service, every flag its
// command does not take and every variable nothing in it reads: not a
// flag's variable (config.EnvVar), not a ${VAR} of the workflow files, not
// read by the AWS SDK or the Go runtime.
func checkCommand(t *testing.T, where string, argv []string, env []string) {
	t.Helper()
	command, flags := commandOf(t, argv)
	known := commandFlags(t, command)
	readable := slices.Clone(runtimeEnv)
	for _, f := range known {
		readable = append(readable, config.EnvVar(f))
	}
	for _, text := range workflowFiles(t) {
		for _, m := range workflowVar.FindAllStringSubmatch(text, -1) {
			readable = append(readable, m[1])
		}
	}
	for _, f := range flags {
		if !slices.Contains(known, f) {
			t.Errorf("%s: %s has no flag -%s (it has %s)", where, command, f, strings.Join(known, ", "))
		}
	}
	for _, e := range env {
		if !slices.Contains(readable, e) {
			t.Errorf("%s: nothing in %s reads the variable %s", where, command, e)
		}
	}
}
