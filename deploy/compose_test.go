package deploy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type composeService struct {
	Image       string         `yaml:"image"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	StopGrace   string         `yaml:"stop_grace_period"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Ports []string `yaml:"ports"`
}

var healthGet = regexp.MustCompile(`GET (/\S*) HTTP`)

// deploy/compose.yaml parses (anchors and merge keys resolved, as Compose
// does), and every service that runs the Sluice image passes flags its
// command takes and variables something reads; health checks ask the
// health endpoints; the worker can be scaled (--scale worker=N).
func TestComposeMatchesTheBinaries(t *testing.T) {
	t.Parallel()
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/compose.yaml"), &file); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	image := file.Services["scheduler"].Image
	var ran []string
	for _, name := range slices.Sorted(maps.Keys(file.Services)) {
		s := file.Services[name]
		if s.Image != image {
			continue // redis, s3
		}
		ran = append(ran, name)
		where := "compose service " + name
		checkCommand(t, where, s.Command, slices.Collect(maps.Keys(s.Environment)))
		if s.Healthcheck != nil {
			m := healthGet.FindStringSubmatch(fmt.Sprint(s.Healthcheck.Test))
			if m == nil || !slices.Contains([]string{"/livez", "/readyz", "/healthz"}, m[1]) {
				t.Errorf("%s: health check %q asks no health endpoint", where, s.Healthcheck.Test)
			}
		}
	}
	if !slices.Contains(ran, "scheduler") || !slices.Contains(ran, "worker") {
		t.Fatalf("services running the image %s: %v, want scheduler and worker", image, ran)
	}

	w := file.Services["worker"]
	if len(w.Ports) != 0 {
		t.Errorf("the worker publishes ports %v: --scale worker=N would collide", w.Ports)
	}
	if w.Deploy == nil || w.Deploy.Replicas < 1 {
		t.Error("the worker service sets no deploy.replicas")
	}
	timeout := 8 * time.Second
	if v, ok := w.Environment["SLUICE_SHUTDOWN_TIMEOUT"].(string); ok {
		var err error
		if timeout, err = time.ParseDuration(v); err != nil {
			t.Fatalf("worker SLUICE_SHUTDOWN_TIMEOUT: %v", err)
		}
	}
	grace, err := time.ParseDuration(w.StopGrace)
	if err != nil || grace <= timeout {
		t.Errorf("worker stop_grace_period %q, want above the shutdown timeout %s", w.StopGrace, timeout)
	}
}
