package deploy

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"sluice/internal/config"
	"sluice/internal/redisstore"
	"sluice/tasks"
)

type meta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

type object struct {
	Kind     string `json:"kind"`
	Metadata meta   `json:"metadata"`
}

type container struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Env     []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `json:"configMapRef"`
		SecretRef    *struct{ Name string } `json:"secretRef"`
	} `json:"envFrom"`
	Ports []struct {
		Name string `json:"name"`
	} `json:"ports"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
}

type deployment struct {
	object
	Spec struct {
		Replicas *int `json:"replicas"`
		Template struct {
			Metadata meta `json:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int         `json:"terminationGracePeriodSeconds"`
				Containers                    []container `json:"containers"`
				Volumes                       []struct {
					Name      string                 `json:"name"`
					ConfigMap *struct{ Name string } `json:"configMap"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type configMap struct {
	object
	Data map[string]string `json:"data"`
}

type selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

// manifests is one rendering: every object as JSON, by kind and name.
type manifests map[string]map[string][]byte

func (m manifests) names(kind string) []string { return slices.Sorted(maps.Keys(m[kind])) }

// get decodes the object of that kind and name into v.
func (m manifests) get(t *testing.T, kind, name string, v any) {
	t.Helper()
	b, ok := m[kind][name]
	if !ok {
		t.Fatalf("no %s %s among %v", kind, name, m.names(kind))
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

// the one object of a kind whose name starts with prefix (generated
// ConfigMaps carry a hash suffix).
func (m manifests) named(t *testing.T, kind, prefix string) string {
	t.Helper()
	var found []string
	for _, n := range m.names(kind) {
		if strings.HasPrefix(n, prefix) {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s named %s*: %v", len(found), kind, prefix, found)
	}
	return found[0]
}

// render builds a kustomization as `kubectl apply -k dir` does (the same
// kustomize API, files only from inside each kustomization's root).
func render(t *testing.T, dir string) manifests {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := manifests{}
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if out[r.GetKind()] == nil {
			out[r.GetKind()] = map[string][]byte{}
		}
		out[r.GetKind()][r.GetName()] = b
	}
	return out
}

// overlay writes a kustomization of the base and the given components to
// a temporary folder and renders it: the combinations deploy/README.md
// documents.
func overlay(t *testing.T, components ...string) manifests {
	t.Helper()
	dir := t.TempDir()
	// kustomize takes relative paths only.
	k8s, err := filepath.Rel(dir, filepath.Join(repoRoot(), "deploy", "k8s"))
	if err != nil {
		t.Fatal(err)
	}
	text := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + filepath.Join(k8s, "base") + "\n"
	if len(components) > 0 {
		text += "components:\n"
		for _, c := range components {
			text += "  - " + filepath.Join(k8s, "components", c) + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return render(t, dir)
}

func fleet(t *testing.T) manifests {
	return render(t, filepath.Join(repoRoot(), "deploy", "k8s"))
}

func containerEnv(c container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// The workflow ConfigMap is the workflows/ folder itself, and both
// Deployments mount that very ConfigMap.
func TestWorkflowConfigMapIsTheWorkflowFiles(t *testing.T) {
	t.Parallel()
	m := fleet(t)
	name := m.named(t, "ConfigMap", "sluice-workflows-")
	var cm configMap
	m.get(t, "ConfigMap", name, &cm)
	want := workflowFiles(t)
	if !maps.Equal(cm.Data, want) {
		t.Errorf("ConfigMap %s holds %v, want exactly the files of workflows/ %v (list every file in workflows/Kustomization)", name, slices.Sorted(maps.Keys(cm.Data)), slices.Sorted(maps.Keys(want)))
	}
	for _, d := range []string{"sluice-scheduler", "sluice-worker"} {
		var dep deployment
		m.get(t, "Deployment", d, &dep)
		mounted := false
		for _, v := range dep.Spec.Template.Spec.Volumes {
			mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == name)
		}
		if !mounted {
			t.Errorf("Deployment %s does not mount ConfigMap %s", d, name)
		}
	}
}

// queuesOfTasks enqueues one task of every type to a real Redis and
// returns the queues asynq put them on.
func queuesOfTasks(t *testing.T, opt asynq.RedisConnOpt) []string {
	t.Helper()
	client := asynq.NewClient(opt)
	defer client.Close()
	ref := tasks.StepRef{Workflow: "w", RunID: "r", Step: "s"}
	o := tasks.DefaultOptions
	var ts []*asynq.Task
	add := func(task *asynq.Task, err error) {
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, task)
	}
	add(tasks.NewCrawlRunTask(tasks.CrawlRunPayload{StepRef: ref}, o))
	add(tasks.NewTransformPlanTask(tasks.TransformPlanPayload{StepRef: ref}, o))
	add(tasks.NewTransformMapTask(tasks.TransformMapPayload{StepRef: ref, Shards: 1}, o))
	add(tasks.NewTransformSplitTask(tasks.TransformSplitPayload{StepRef: ref, Shards: 1}, o))
	add(tasks.NewTransformReduceTask(tasks.TransformReducePayload{StepRef: ref, Date: "2026-11-01"}, o))
	add(tasks.NewTransformCommitTask(tasks.TransformCommitPayload{StepRef: ref, Date: "2026-11-01", Dates: 1}, o))
	var queues []string
	for _, task := range ts {
		info, err := client.EnqueueContext(context.Background(), task)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(queues, info.Queue) {
			queues = append(queues, info.Queue)
		}
	}
	return queues
}

// KEDA scales the worker Deployment from zero on the pending and the
// running tasks of every queue the tasks use and the workers serve, and
// reads Redis with the credentials of the Secret the pods use.
func TestScaledObjectScalesWorkersOnTheQueues(t *testing.T) {
	t.Parallel()
	m := fleet(t)
	if hpas := m.names("HorizontalPodAutoscaler"); len(hpas) != 0 {
		t.Errorf("the fleet ships HPAs %v beside KEDA's (two autoscalers would fight)", hpas)
	}
	var so struct {
		object
		Spec struct {
			ScaleTargetRef  struct{ APIVersion, Kind, Name string } `json:"scaleTargetRef"`
			MinReplicaCount *int                                    `json:"minReplicaCount"`
			MaxReplicaCount int                                     `json:"maxReplicaCount"`
			CooldownPeriod  int                                     `json:"cooldownPeriod"`
			PollingInterval int                                     `json:"pollingInterval"`
			Triggers        []struct {
				Type              string                `json:"type"`
				Metadata          map[string]string     `json:"metadata"`
				AuthenticationRef struct{ Name string } `json:"authenticationRef"`
			} `json:"triggers"`
		} `json:"spec"`
	}
	m.get(t, "ScaledObject", "sluice-worker", &so)
	var worker deployment
	m.get(t, "Deployment", so.Spec.ScaleTargetRef.Name, &worker)
	if so.Spec.ScaleTargetRef.Kind != "Deployment" || worker.Spec.Template.Metadata.Labels["app.kubernetes.io/component"] != "worker" {
		t.Errorf("ScaledObject targets %+v, not the worker Deployment", so.Spec.ScaleTargetRef)
	}
	if worker.Spec.Replicas != nil {
		t.Errorf("the worker Deployment sets replicas %d: every apply would fight KEDA", *worker.Spec.Replicas)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != 0 || so.Spec.MaxReplicaCount < 1 {
		t.Errorf("replicas %v..%d, want 0..N", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}
	if so.Spec.PollingInterval < 5 || so.Spec.PollingInterval > 60 || so.Spec.CooldownPeriod < 60 {
		t.Errorf("pollingInterval %d s, cooldownPeriod %d s: want a poll within a minute and a cool-down of minutes", so.Spec.PollingInterval, so.Spec.CooldownPeriod)
	}

	lists := map[string]string{} // list → authentication
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "redis" {
			t.Errorf("trigger of type %q, want redis", tr.Type)
			continue
		}
		lists[tr.Metadata["listName"]] = tr.AuthenticationRef.Name
	}
	_, opt := newOrchestrator(t)
	queues := queuesOfTasks(t, opt)
	c := worker.Spec.Template.Spec.Containers[0]
	served, err := config.ParseQueues(containerEnv(c)["SLUICE_QUEUES"])
	if err != nil {
		t.Fatalf("worker SLUICE_QUEUES: %v", err)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(served)), slices.Sorted(slices.Values(queues))) {
		t.Errorf("workers serve %v, the tasks use %v", slices.Sorted(maps.Keys(served)), queues)
	}
	for _, q := range queues {
		for _, list := range []string{redisstore.AsynqPendingKey(q), redisstore.AsynqActiveKey(q)} {
			if _, ok := lists[list]; !ok {
				t.Errorf("no trigger on %s (queue %s); triggers: %v", list, q, slices.Sorted(maps.Keys(lists)))
			}
		}
	}

	// The credentials: a TriggerAuthentication over keys of the Secret the
	// worker pods read, keys the example Secret has.
	var secret string
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			secret = ef.SecretRef.Name
		}
	}
	var example struct {
		Metadata   meta              `json:"metadata"`
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/k8s/secret.example.yaml"), &example); err != nil {
		t.Fatal(err)
	}
	if example.Metadata.Name != secret {
		t.Errorf("secret.example.yaml makes Secret %q, the workers read %q", example.Metadata.Name, secret)
	}
	for list, auth := range lists {
		var ta struct {
			Spec struct {
				SecretTargetRef []struct{ Parameter, Name, Key string } `json:"secretTargetRef"`
			} `json:"spec"`
		}
		m.get(t, "TriggerAuthentication", auth, &ta)
		params := map[string]bool{}
		for _, ref := range ta.Spec.SecretTargetRef {
			params[ref.Parameter] = true
			if ref.Name != secret {
				t.Errorf("%s: TriggerAuthentication %s reads Secret %s, the workers %s", list, auth, ref.Name, secret)
			}
			if _, ok := example.StringData[ref.Key]; !ok {
				t.Errorf("TriggerAuthentication %s reads key %s, which secret.example.yaml lacks", auth, ref.Key)
			}
		}
		if !params["address"] || !params["password"] {
			t.Errorf("TriggerAuthentication %s gives %v, want address and password", auth, params)
		}
	}
	// Every key of the example Secret is read by the pods or by KEDA.
	for key := range example.StringData {
		if key == "REDIS_ADDRESS" || key == "REDIS_PASSWORD" {
			continue // KEDA's, checked above
		}
		checkCommand(t, "secret.example.yaml", []string{"worker"}, []string{key})
	}
}

// Both Deployments: the commands and variables the binaries take, probes
// on the health endpoints, and a worker grace period longer than its
// shutdown timeout.
func TestDeploymentsRunTheBinariesAsTheyAre(t *testing.T) {
	t.Parallel()
	m := fleet(t)
	var settings configMap
	m.get(t, "ConfigMap", "sluice-config", &settings)
	for _, name := range []string{"sluice-scheduler", "sluice-worker"} {
		var d deployment
		m.get(t, "Deployment", name, &d)
		for _, c := range d.Spec.Template.Spec.Containers {
			where := "Deployment " + name + " container " + c.Name
			env := slices.Collect(maps.Keys(containerEnv(c)))
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					var cm configMap
					m.get(t, "ConfigMap", ef.ConfigMapRef.Name, &cm)
					env = append(env, slices.Collect(maps.Keys(cm.Data))...)
				}
			}
			checkCommand(t, where, append(slices.Clone(c.Command), c.Args...), env)

			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			for kind, pr := range map[string]struct {
				p    *probe
				path string
			}{"liveness": {c.LivenessProbe, "/livez"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
				if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || !ports[pr.p.HTTPGet.Port] {
					t.Errorf("%s: %s probe %+v, want GET %s on a declared port", where, kind, pr.p, pr.path)
				}
			}
			if name != "sluice-worker" {
				continue
			}
			timeout := 8 * time.Second // the flag's default
			if v, ok := containerEnv(c)["SLUICE_SHUTDOWN_TIMEOUT"]; ok {
				var err error
				if timeout, err = time.ParseDuration(v); err != nil {
					t.Fatalf("%s: SLUICE_SHUTDOWN_TIMEOUT: %v", where, err)
				}
			}
			grace := time.Duration(d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
			if grace < timeout+10*time.Second {
				t.Errorf("%s: terminationGracePeriodSeconds %s, want above the shutdown timeout %s (+10 s to hand tasks back)", where, grace, timeout)
			}
		}
	}
}

// Disruption budgets for both, scrape objects that select the pods and
// their ports, and the dashboard ConfigMap equal to the shipped JSON.
func TestBudgetsAndMonitorsSelectThePods(t *testing.T) {
	t.Parallel()
	m := fleet(t)
	pods := map[string]map[string]string{} // component → pod labels
	ports := map[string][]string{}
	for _, name := range m.names("Deployment") {
		var d deployment
		m.get(t, "Deployment", name, &d)
		labels := d.Spec.Template.Metadata.Labels
		pods[labels["app.kubernetes.io/component"]] = labels
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, p := range c.Ports {
				ports[labels["app.kubernetes.io/component"]] = append(ports[labels["app.kubernetes.io/component"]], p.Name)
			}
		}
	}
	selects := func(sel map[string]string) string {
		for comp, labels := range pods {
			ok := len(sel) > 0
			for k, v := range sel {
				ok = ok && labels[k] == v
			}
			if ok {
				return comp
			}
		}
		return ""
	}
	budgets := map[string]bool{}
	for _, name := range m.names("PodDisruptionBudget") {
		var p struct {
			Spec struct {
				Selector selector `json:"selector"`
			} `json:"spec"`
		}
		m.get(t, "PodDisruptionBudget", name, &p)
		budgets[selects(p.Spec.Selector.MatchLabels)] = true
	}
	if !budgets["scheduler"] || !budgets["worker"] {
		t.Errorf("disruption budgets cover %v, want scheduler and worker", budgets)
	}

	var svc struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			Selector map[string]string       `json:"selector"`
			Ports    []struct{ Name string } `json:"ports"`
		} `json:"spec"`
	}
	m.get(t, "Service", "sluice-scheduler", &svc)
	var sm struct {
		Spec struct {
			Selector  selector                      `json:"selector"`
			Endpoints []struct{ Port, Path string } `json:"endpoints"`
		} `json:"spec"`
	}
	m.get(t, "ServiceMonitor", "sluice-scheduler", &sm)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the Service has %v", k, v, svc.Metadata.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || !slices.ContainsFunc(svc.Spec.Ports, func(p struct{ Name string }) bool { return p.Name == sm.Spec.Endpoints[0].Port }) {
		t.Errorf("ServiceMonitor endpoints %+v, Service ports %+v", sm.Spec.Endpoints, svc.Spec.Ports)
	}
	var pm struct {
		Spec struct {
			Selector            selector                      `json:"selector"`
			PodMetricsEndpoints []struct{ Port, Path string } `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	m.get(t, "PodMonitor", "sluice-worker", &pm)
	if selects(pm.Spec.Selector.MatchLabels) != "worker" || len(pm.Spec.PodMetricsEndpoints) != 1 ||
		pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" || !slices.Contains(ports["worker"], pm.Spec.PodMetricsEndpoints[0].Port) {
		t.Errorf("PodMonitor %+v does not scrape the worker pods' metrics port %v", pm.Spec, ports["worker"])
	}

	var dash configMap
	m.get(t, "ConfigMap", "sluice-dashboard", &dash)
	if dash.Metadata.Labels["grafana_dashboard"] != "1" || dash.Data["sluice-dashboard.json"] != string(readFile(t, dashboardFile)) {
		t.Errorf("ConfigMap sluice-dashboard: labels %v, keys %v; want the Grafana sidecar label and the dashboard file", dash.Metadata.Labels, slices.Sorted(maps.Keys(dash.Data)))
	}
}

// The documented alternatives render: the base alone (one worker), and
// the CPU autoscaler instead of KEDA.
func TestAlternativesRender(t *testing.T) {
	t.Parallel()
	base := overlay(t)
	for _, kind := range []string{"ScaledObject", "HorizontalPodAutoscaler", "PrometheusRule", "PodDisruptionBudget"} {
		if n := base.names(kind); len(n) != 0 {
			t.Errorf("the base alone has %s %v", kind, n)
		}
	}
	base.named(t, "ConfigMap", "sluice-workflows-")

	cpu := overlay(t, "cpu-hpa", "pdb")
	var hpa struct {
		Spec struct {
			ScaleTargetRef struct{ Kind, Name string } `json:"scaleTargetRef"`
			MinReplicas    int                         `json:"minReplicas"`
		} `json:"spec"`
	}
	cpu.get(t, "HorizontalPodAutoscaler", "sluice-worker", &hpa)
	var d deployment
	cpu.get(t, "Deployment", hpa.Spec.ScaleTargetRef.Name, &d)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || d.Spec.Template.Metadata.Labels["app.kubernetes.io/component"] != "worker" || hpa.Spec.MinReplicas < 1 {
		t.Errorf("HPA %+v", hpa.Spec)
	}
	if n := cpu.names("ScaledObject"); len(n) != 0 {
		t.Errorf("the CPU alternative has ScaledObjects %v", n)
	}
}
