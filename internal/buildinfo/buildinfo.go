// Package buildinfo says which build of Sluice is running: for `scheduler
// version` and the sluice_build_info series both commands export.
package buildinfo

import (
	"fmt"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the Go toolchain recorded of the build.
type Info struct {
	Version   string // the module version, "(devel)" for a build from a checkout
	Revision  string // the VCS revision (12 characters), when built from a checkout
	Time      string // the revision's time
	Modified  bool   // built from a checkout with changes
	GoVersion string
}

// Read reads the build's information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(unknown build)"}
	}
	i := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
			if len(i.Revision) > 12 {
				i.Revision = i.Revision[:12]
			}
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String describes the build: the module version (or the VCS revision and
// time of a build from a checkout) and the Go version.
func (i Info) String() string {
	v := i.Version
	if i.Revision != "" {
		dirty := ""
		if i.Modified {
			dirty = "+dirty"
		}
		v += fmt.Sprintf(" (%s%s, %s)", i.Revision, dirty, i.Time)
	}
	if i.GoVersion != "" {
		v += " " + i.GoVersion
	}
	return v
}

// Collector exports sluice_build_info{program, version, revision,
// goversion} = 1, so a dashboard can tell which build each process runs
// (and when a rollout has reached every one).
func Collector(program string) prometheus.Collector {
	i := Read()
	rev := i.Revision
	if i.Modified && rev != "" {
		rev += "+dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sluice_build_info",
		Help:        "1, labelled with the program and the build it runs: module version, VCS revision, Go version.",
		ConstLabels: prometheus.Labels{"program": program, "version": i.Version, "revision": rev, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
