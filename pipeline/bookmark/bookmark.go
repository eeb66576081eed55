// Package bookmark decides which output partitions of a transform job need
// rebuilding, and remembers what each was built from.
//
// Glue's job bookmarks remember which input files were processed and skip
// them next time, which appends new rows to existing partitions and, on a
// retry, duplicates them. Sluice instead rebuilds whole partitions and skips
// a partition only when the exact set of input objects that hold its events
// is unchanged since it was last built:
//
//   - The object index records, for every input object a run has read, its
//     ETag and the local dates of its events (all of them, not only those
//     inside the run's window, so that a late event found by a daily run
//     marks its old partition as changed for whoever rebuilds it later).
//   - A build record per partition keeps the fingerprint of the objects it
//     was built from and a hash of the job spec.
//
// A partition is rebuilt when it was never built, the spec changed, the
// fingerprint of its known objects changed (an object added, rewritten or
// deleted), or an object the index has not seen yet could hold its events.
// Everything lives in the job's output location under _sluice/, so it shares
// the output's durability and a reader ignores it.
package bookmark

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"slices"
	"strconv"
	"time"

	"sluice/pipeline/civil"
	"sluice/pipeline/transform"
)

// ObjectEntry is what the index knows of one input object.
type ObjectEntry struct {
	ETag  string   `json:"etag"`
	Dates []string `json:"dates"` // local dates of its valid events, sorted
}

// Build is the record of one partition's last build.
type Build struct {
	Date        string    `json:"date"`
	Fingerprint string    `json:"fingerprint"`
	Spec        string    `json:"spec"`
	RunID       string    `json:"run_id"`
	BuiltAt     time.Time `json:"built_at"`
	Objects     int       `json:"objects"`
	// Inputs are the keys of those objects, sorted: a rebuild that no
	// longer finds some of them is refused without consent (Vanished).
	// Builds recorded before they were kept have none.
	Inputs []string `json:"inputs,omitempty"`
	// Rows and Files are what the build published; MappedRows the rows
	// it read before deduplication (the shrink guard compares a rebuild's
	// with it); Bytes the files' size and InputBytes the intermediate bytes
	// they were reduced from (their ratio sizes the next build's files).
	Rows       int64    `json:"rows"`
	MappedRows int64    `json:"mapped_rows"`
	Files      []string `json:"files,omitempty"`
	Bytes      int64    `json:"bytes"`
	InputBytes int64    `json:"input_bytes"`
}

// Reasons a partition is rebuilt.
const (
	ReasonForced       = "forced"
	ReasonNeverBuilt   = "never built"
	ReasonSpecChanged  = "job spec changed"
	ReasonInputChanged = "input objects changed"
	ReasonNewInput     = "new input objects may hold its events"
	// ReasonFilesDrifted: the partition's folder does not hold exactly the
	// files its last build published (a commit cut short, say by a cancel
	// between its copies and its deletes, or files changed by hand).
	ReasonFilesDrifted = "published files differ from its last build"
)

// Decision is what a run does.
type Decision struct {
	Rebuild map[string]string // date -> reason
	Skip    []string          // dates left as they are, sorted
	// Objects are the inputs to read, in key order: every object not yet in
	// the index, and every known object that holds events of a date to
	// rebuild.
	Objects []transform.Object
}

// Decide compares the candidate inputs of a window with the index and the
// build records. spec identifies the job's configuration (see SpecHash).
// drifted are the dates whose published files are not those of their
// build (see ReasonFilesDrifted).
func Decide(window []civil.Date, candidates []transform.Object, known map[string]ObjectEntry, builds map[string]Build, spec string, force bool, drifted map[string]bool) Decision {
	d := Decision{Rebuild: map[string]string{}}
	contrib := map[string][]transform.Object{}
	var unknown []transform.Object
	var newestUnknown string // latest date an unknown object could hold
	for _, o := range candidates {
		e, ok := known[o.Key]
		if !ok || e.ETag != o.ETag {
			unknown = append(unknown, o)
			if bound := latestDate(o.Key); bound > newestUnknown {
				newestUnknown = bound
			}
			continue
		}
		for _, date := range e.Dates {
			contrib[date] = append(contrib[date], o)
		}
	}
	need := map[string]bool{}
	for _, o := range unknown {
		need[o.Key] = true
	}
	for _, day := range window {
		date := day.String()
		b, built := builds[date]
		switch {
		case force:
			d.Rebuild[date] = ReasonForced
		case !built:
			d.Rebuild[date] = ReasonNeverBuilt
		case b.Spec != spec:
			d.Rebuild[date] = ReasonSpecChanged
		case drifted[date]:
			d.Rebuild[date] = ReasonFilesDrifted
		case Fingerprint(contrib[date]) != b.Fingerprint:
			d.Rebuild[date] = ReasonInputChanged
		case len(unknown) > 0 && date <= newestUnknown:
			d.Rebuild[date] = ReasonNewInput
		default:
			d.Skip = append(d.Skip, date)
			continue
		}
		for _, o := range contrib[date] {
			need[o.Key] = true
		}
	}
	for _, o := range candidates {
		if need[o.Key] {
			d.Objects = append(d.Objects, o)
		}
	}
	slices.SortFunc(d.Objects, func(a, b transform.Object) int { return cmpString(a.Key, b.Key) })
	return d
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// latestDate is the last local date whose events an object can hold: events
// are received after they happen, so nothing in the received-day folder of
// UTC day R is dated after R+1 in any zone. Objects outside an epoch-ms
// folder are unbounded.
func latestDate(key string) string {
	ms, err := strconv.ParseInt(path.Base(path.Dir(key)), 10, 64)
	if err != nil {
		return "9999-12-31"
	}
	return time.UnixMilli(ms).UTC().AddDate(0, 0, 1).Format(time.DateOnly)
}

// Fingerprint identifies a set of objects by key and ETag, whatever their
// order.
func Fingerprint(objs []transform.Object) string {
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key+"\x00"+o.ETag)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Contributors lists, for each date, the objects the index says hold its
// events; the caller records builds with their Fingerprint.
func Contributors(objs []transform.Object, known map[string]ObjectEntry) map[string][]transform.Object {
	out := map[string][]transform.Object{}
	for _, o := range objs {
		e, ok := known[o.Key]
		if !ok || e.ETag != o.ETag {
			continue
		}
		for _, d := range e.Dates {
			out[d] = append(out[d], o)
		}
	}
	return out
}

// SpecHash identifies a job configuration together with the version of the
// output format, so that changing either rebuilds every partition.
func SpecHash(specYAML []byte, formatVersion string) string {
	h := sha256.Sum256(append([]byte(formatVersion+"\n"), specYAML...))
	return hex.EncodeToString(h[:8])
}

// Vanished returns, for each build, the inputs it recorded that are not
// among candidates (the window's input listing), sorted: raw objects that
// were deleted or expired since, or a listing that no longer reaches them.
// Dates with none are left out.
func Vanished(builds map[string]Build, candidates []transform.Object) map[string][]string {
	present := make(map[string]bool, len(candidates))
	for _, o := range candidates {
		present[o.Key] = true
	}
	out := map[string][]string{}
	for date, b := range builds {
		for _, k := range b.Inputs {
			if !present[k] {
				out[date] = append(out[date], k)
			}
		}
		slices.Sort(out[date])
	}
	for date, keys := range out {
		if len(keys) == 0 {
			delete(out, date)
		}
	}
	return out
}

// Keys returns the objects' keys, sorted.
func Keys(objs []transform.Object) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	slices.Sort(keys)
	return keys
}
