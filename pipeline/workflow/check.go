package workflow

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a workflow file, where it is.
type Problem struct {
	Line, Column int    // 1-based; 0 when the file as a whole is meant
	Field        string // the YAML path, e.g. steps[5] (mobile-user-daily).job.transform.where
	Message      string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Checked is a workflow file as Check read it: the workflow (nil when the
// file does not decode) and its YAML tree, for checks that need positions.
type Checked struct {
	Workflow *Workflow
	Root     *yaml.Node // the document's mapping; nil when it does not parse
}

// Check reads a workflow file and reports every problem it finds, each
// with its line and column: YAML that does not parse, unknown fields, and
// every failed check of Load (job transform blocks are left to the
// caller, see JobNode). lookup expands ${VAR}.
func Check(raw []byte, lookup func(string) (string, bool)) (Checked, []Problem) {
	expanded := []byte(ExpandEnv(string(raw), lookup))
	var doc yaml.Node
	if err := yaml.Unmarshal(expanded, &doc); err != nil {
		return Checked{}, []Problem{yamlProblem(err.Error())}
	}
	var out Checked
	if len(doc.Content) == 0 {
		return out, []Problem{{Message: "empty file"}}
	}
	out.Root = doc.Content[0]
	var problems []Problem
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var w Workflow
	if err := dec.Decode(&w); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return out, []Problem{yamlProblem(err.Error())}
		}
		for _, e := range te.Errors {
			problems = append(problems, yamlProblem(e))
		}
		// Decode what can be: the rest is checked without the unknown
		// fields.
		var loose Workflow
		if yaml.Unmarshal(expanded, &loose) != nil {
			return out, problems
		}
		w = loose
	}
	if err := w.validate(nil); err != nil {
		for _, e := range unjoin(err) {
			problems = append(problems, out.At(e.Error()))
		}
		// validate leaves these out while there is anything else wrong.
		for _, e := range w.checkReachable() {
			problems = append(problems, out.At(e.Error()))
		}
	}
	out.Workflow = &w
	return out, problems
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblem places a yaml.v3 message ("line 12: field x not found in
// type workflow.Workflow").
func yamlProblem(msg string) Problem {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Column: 1, Message: strings.Replace(m[2], " in type workflow.", " in ", 1)}
	}
	return Problem{Message: strings.TrimPrefix(msg, "yaml: ")}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

var stepName = regexp.MustCompile(` \([^)]*\)`)

// At places a message that starts with a field path ("steps[5]
// (mobile-user-daily).job.input: …") at the node of that field, or of its
// nearest ancestor the file has.
func (c Checked) At(msg string) Problem {
	field, text, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(stepName.ReplaceAllString(field, ""), " ") {
		return Problem{Message: msg}
	}
	n := Find(c.Root, stepName.ReplaceAllString(field, ""))
	p := Problem{Field: field, Message: text}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// Find is the node at a dotted path of mapping keys and [i] indexes
// (steps[5].job.transform.derive[1].expression) below n, or the deepest
// node on the way.
func Find(n *yaml.Node, path string) *yaml.Node {
	if n == nil || path == "" {
		return n
	}
	for _, seg := range strings.Split(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i > 0 && strings.HasSuffix(seg, "]") {
			key = seg[:i]
			idx, _ = strconv.Atoi(seg[i+1 : len(seg)-1])
		}
		next := mapValue(n, key)
		if next == nil {
			return n
		}
		if idx >= 0 {
			if next.Kind != yaml.SequenceNode || idx >= len(next.Content) {
				return next
			}
			next = next.Content[idx]
		}
		n = next
	}
	return n
}

// mapValue is the value of key in a mapping node; the key's own node when
// the value is empty (so a problem points at the key).
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value == "" && v.Tag == "!!null" {
				return n.Content[i]
			}
			return v
		}
	}
	return nil
}

// JobNode is the transform block of job step i, or nil.
func (c Checked) JobNode(i int) *yaml.Node {
	n := Find(c.Root, fmt.Sprintf("steps[%d].job.transform", i))
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// UnknownKeys reports the keys of a mapping node that known does not
// list, each at its position.
func UnknownKeys(n *yaml.Node, field string, known []string) []Problem {
	var out []Problem
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(known, k.Value) {
			out = append(out, Problem{Line: k.Line, Column: k.Column, Field: field + "." + k.Value, Message: "unknown field"})
		}
	}
	return out
}
