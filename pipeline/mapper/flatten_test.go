package mapper

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"sluice/pipeline/intermediate"
	"sluice/pipeline/segmentgen"
	"sluice/pipeline/storage/memstore"
)

// flatPair runs the flattener and the fastjson reference side by side on
// the same lines, each with its own mapper, and compares everything a line
// produces: its outcome, its encoded fields and the shard's column ids.
type flatPair struct {
	got, want *mapper
	ref       *refReader
}

func newFlatPair(t testing.TB) *flatPair {
	t.Helper()
	spec := testSpec()
	w := window(t, "2026-10-01", "2026-10-31")
	a, err := newMapper(spec, w, intermediate.CodecNone, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newMapper(spec, w, intermediate.CodecNone, Options{})
	return &flatPair{got: a, want: b, ref: newRefReader(b)}
}

// check compares one line; it reports false (and why) on a difference.
func (p *flatPair) check(t testing.TB, line []byte) bool {
	t.Helper()
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return true
	}
	in := bytes.Clone(line)
	got := p.got.readLine(line)
	want := p.ref.readLine(line)
	if !bytes.Equal(in, line) {
		t.Errorf("line modified: %q", in)
		return false
	}
	if got.reason != want.reason || got.detail != want.detail || got.hasDay != want.hasDay || got.outside != want.outside ||
		got.day != want.day || got.us != want.us || got.off != want.off || (got.hasDay && !bytes.Equal(got.id, want.id)) {
		t.Errorf("line %q:\n got %+v id %q\nwant %+v id %q", line, got, got.id, want, want.id)
		return false
	}
	a, b := p.got, p.want
	// The fields matter for a row and for a "bad number" line (whose
	// paths still got column ids); for other lines the old path left the
	// previous row's in place.
	if got.hasDay && !got.outside && (!bytes.Equal(a.fields, b.fields) || !slices.Equal(a.rowCols, b.rowCols) || a.nfields != b.nfields) {
		t.Errorf("line %q: fields\n got %q %v\nwant %q %v", line, a.fields, a.rowCols, b.fields, b.rowCols)
		return false
	}
	if !slices.Equal(a.colPaths, b.colPaths) {
		t.Errorf("line %q: columns\n got %q\nwant %q", line, a.colPaths, b.colPaths)
		return false
	}
	return true
}

const flatTS = `"timestamp":"2026-10-30T18:00:00Z"`

// adversarialLines are hand-written edge cases of fastjson's grammar and of
// the mapper's checks.
var adversarialLines = []string{
	// plain and structural
	`{}`, `[]`, `[1,2]`, `"s"`, `1`, `-`, `nan`, `-inf`, `Infinity`, `true`, `truex`, `null`, `nul`, `{`, `}`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `{"a" : 1}`, "{\t\"a\"\r:\t1 }", "{\"a\":1}\v", `{"a":1}}`, `{"a":1}x`, `{"a":[1,]}`,
	`{"a":[,1]}`, `{"a":[1 2]}`, `{"a":{"b":}}`, `{'a':1}`, `{"a":tru}`, `{"a":fals}`, `{"a":nulll}`, `{"a":True}`,
	// ids and timestamps
	`{"messageId":"x",` + flatTS + `}`,
	`{"messageId":"x",` + flatTS + `,"messageId":"y"}`,
	`{"messageId":"x","timestamp":"2026-10-30T18:00:00Z","timestamp":"bad"}`,
	`{"messageId":"x","timestamp":"bad","timestamp":"2026-10-30T18:00:00Z"}`,
	`{"message\u0049d":"x",` + flatTS + `}`,
	`{"message\u0049d":"x","messageId":"y",` + flatTS + `}`,
	`{"message\u0049d":"x","time\u0073tamp":"2026-10-30T18:00:00Z","timestamp":"2026-10-31T18:00:00Z"}`,
	`{"messageId":"x","time\u0073tamp":"2026-10-30T18:00:00Z","timestamp":"2026-10-31T18:00:00Z"}`,
	`{"messageId":"x","time\u0073tamp":"2026-10-30T18:00:00Z"}`,
	`{"messageId":"x","time\u0073tamp":"2026-10-30T18:00:00Z","timestamp":null}`,
	`{"messageId":"\u0078\ud83d\ude00",` + flatTS + `}`,
	`{"messageId":"",` + flatTS + `}`, `{"messageId":null,` + flatTS + `}`, `{"messageId":nan,` + flatTS + `}`,
	`{"messageId":1,` + flatTS + `}`, `{"messageId":[],` + flatTS + `}`, `{"messageId":{},` + flatTS + `}`,
	`{"messageId":true,` + flatTS + `}`, `{"messageId":false,` + flatTS + `}`, `{"messageId":"x"}`,
	`{"messageId":"x","timestamp":null}`, `{"messageId":"x","timestamp":1}`, `{"messageId":"x","timestamp":{}}`,
	`{"messageId":"x","timestamp":"2026-10-30T18:00:00+09:00"}`, `{"messageId":"x","timestamp":"2026-11-30T18:00:00Z"}`,
	`{"messageId":"x","timestamp":"2026-10-30T18:00:00\u005a"}`, `{"messageId":"x","timestamp":"yesterday"}`,
	// numbers
	`{"messageId":"x",` + flatTS + `,"n":0,"m":-0,"o":1.5,"p":1e5,"q":1E-5,"r":9223372036854775807,"s":9223372036854775808}`,
	`{"messageId":"x",` + flatTS + `,"n":-9223372036854775809,"o":1e400,"p":-1e400,"q":0.1e+2,"r":123456789012345678901234567890}`,
	`{"messageId":"x",` + flatTS + `,"n":1.2.3}`, `{"messageId":"x",` + flatTS + `,"n":01}`, `{"messageId":"x",` + flatTS + `,"n":+1}`,
	`{"messageId":"x",` + flatTS + `,"n":1.}`, `{"messageId":"x",` + flatTS + `,"n":.5}`, `{"messageId":"x",` + flatTS + `,"n":-}`,
	`{"messageId":"x",` + flatTS + `,"n":nan}`, `{"messageId":"x",` + flatTS + `,"n":NaN}`, `{"messageId":"x",` + flatTS + `,"n":-inf}`,
	`{"messageId":"x",` + flatTS + `,"n":+Inf}`, `{"messageId":"x",` + flatTS + `,"n":inf}`, `{"messageId":"x",` + flatTS + `,"n":--inf}`,
	`{"messageId":"x",` + flatTS + `,"n":1inf}`, `{"messageId":"x",` + flatTS + `,"n":nanx}`, `{"messageId":"x",` + flatTS + `,"n":1ee2}`,
	`{"messageId":"x",` + flatTS + `,"a":1,"n":1.2.3,"b":2}`, `{"messageId":"x","timestamp":"2026-11-30T18:00:00Z","n":1.2.3}`,
	`{"messageId":"x",` + flatTS + `,"integrations":{"n":1.2.3}}`, `{"messageId":"x",` + flatTS + `,"n":[1.2.3,nan,-inf]}`,
	`{"messageId":"x",` + flatTS + `,"n":in}`, `{"messageId":"x",` + flatTS + `,"n":-n}`, `{"messageId":"x",` + flatTS + `,"n":na}`,
	// strings and escapes
	`{"messageId":"x",` + flatTS + `,"s":"a\"b\\c\/d\be\ff\ng\rh\ti"}`,
	`{"messageId":"x",` + flatTS + `,"s":"\u00e9\u4e2d\uD83D\uDE00\uD800\uDBFF\uDFFF"}`,
	`{"messageId":"x",` + flatTS + `,"s":"\uD800","t":"\uD800x","u":"\uD800\u0041","v":"\uDC00","w":"\uD800\uZZZZ"}`,
	`{"messageId":"x",` + flatTS + `,"s":"\u12","t":"\u12G4","u":"\x","v":"\","w":"\\"}`,
	`{"messageId":"x",` + flatTS + `,"s":"\\\"","t":"\\\\","u":"a\\"}`,
	`{"messageId":"x",` + flatTS + `,"s":"` + "tab\there\x01\x7f\xff\xfe" + `"}`,
	`{"messageId":"x",` + flatTS + `,"s":"\u0000","t":"\u002e","\u002e":1}`,
	`{"messageId":"x",` + flatTS + `,"s":"unterminated}`,
	`{"messageId":"x",` + flatTS + `,"s":"a\\\"}`,
	// keys
	`{"messageId":"x",` + flatTS + `,"":1,"a.b":2,"a":{"b":3},"A":{"":{"":4}}}`,
	`{"messageId":"x",` + flatTS + `,"k\"q":1,"k\\u":2,"k\u0041":3,"\uD83D\uDE00":4,"\uD800":5,"\q":6}`,
	`{"messageId":"x",` + flatTS + `,"a":1,"a":"s","a":null,"a":{"b":1},"a":[]}`,
	`{"messageId":"x",` + flatTS + `,"integrations":1,"_metadata":{"x":1},"integr\u0061tions":2,"_metadata":[]}`,
	`{"messageId":"x",` + flatTS + `,"c":{"integrations":1,"timestamp":2,"messageId":3}}`,
	`{"messageId":"x",` + flatTS + `,"c":{},"d":{"e":{}},"f":{"g":{"h":null}}}`,
	// arrays are rendered by fastjson's MarshalTo
	"{\"messageId\":\"x\"," + flatTS + ",\"a\":[ 1 , \"a b\" ,\t{ \"k\" : [ ] , \"\\u0041\" : nan } , [ ] , null,true ,false, -inf, 1.2.3 ]}",
	`{"messageId":"x",` + flatTS + `,"a":[],"b":[[]],"c":[{}],"d":["\u00e9\"x"],"e":[{"a":1,"a":2}]}`,
	`{"messageId":"x",` + flatTS + `,"a":[1,{"b":}]}`, `{"messageId":"x",` + flatTS + `,"a":[1,{"b"}]}`,
}

func deep(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

func TestFlattenerMatchesFastjson(t *testing.T) {
	t.Parallel()
	p := newFlatPair(t)
	lines := slices.Clone(adversarialLines)
	for _, n := range []int{297, 298, 299, 300, 301} {
		lines = append(lines,
			`{"messageId":"x",`+flatTS+`,"d":`+deep(`{"a":`, `}`, n, `1`)+`}`,
			`{"messageId":"x",`+flatTS+`,"d":`+deep(`[`, `]`, n, `1`)+`}`,
			`{"messageId":"x",`+flatTS+`,"d":`+deep(`[`, `]`, n, ``)+`}`,
			`{"messageId":"x",`+flatTS+`,"d":`+deep(`{"a":`, `}`, n, `{}`)+`}`,
			`{"messageId":"x",`+flatTS+`,"integrations":`+deep(`[`, `]`, n, `1`)+`}`,
			deep(`[`, `]`, n, `1`), deep(`[`, `]`, n+1, ``))
	}
	for _, l := range lines {
		p.check(t, []byte(l))
	}
	// every prefix and every single-byte deletion of the adversarial lines
	for _, l := range adversarialLines {
		for i := range len(l) {
			p.check(t, []byte(l[:i]))
			p.check(t, []byte(l[:i]+l[i+1:]))
		}
	}
}

// TestFlattenerMatchesFastjsonRandom compares the two on random records
// built from the awkward parts of the grammar, and on mutations of them.
func TestFlattenerMatchesFastjsonRandom(t *testing.T) {
	t.Parallel()
	p := newFlatPair(t)
	n := 200000
	if testing.Short() {
		n = 20000
	}
	r := rand.New(rand.NewPCG(1, 2))
	fails := 0
	for i := 0; i < n && fails < 10; i++ {
		line := randomRecord(r)
		if r.IntN(3) == 0 {
			line = mutate(r, line)
		}
		if !p.check(t, line) {
			fails++
		}
	}
}

// TestFlattenerMatchesFastjsonGenerated compares the two on the
// generator's logs, malformed lines included.
func TestFlattenerMatchesFastjsonGenerated(t *testing.T) {
	t.Parallel()
	for _, l := range generatedLines(t, 300) {
		p := newFlatPair(t)
		if !p.check(t, l) {
			return
		}
	}
}

func generatedLines(t testing.TB, eventsPerDay int) [][]byte {
	t.Helper()
	in := memstore.New()
	cfg := segmentgen.DefaultConfig()
	cfg.EventsPerDay = eventsPerDay
	cfg.MalformedRate = 0.05
	if _, err := segmentgen.Generate(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	objs := in.Objects()
	for _, k := range slices.Sorted(maps.Keys(objs)) {
		zr, err := gzip.NewReader(bytes.NewReader(objs[k]))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, MaxLineBytes)
		for sc.Scan() {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	return lines
}

var (
	randKeys = []string{"a", "b", "messageId", "timestamp", "integrations", "_metadata", "context", "userID", "HTTPCode",
		"", "a.b", "é", `message\u0049d`, `time\u0073tamp`, `a\"b`, `\ud83d\ude00`, `\uD800`, `\uD800\u0041`, `\u12`,
		`\x`, `\/`, `x\\`, `\u0061`, `integr\u0061tions`}
	randNumbers = []string{"0", "-0", "1", "-1", "42", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "1.5", "1e5", "1E-5", "1.", "-", ".5", "01", "1.2.3", "+1", "nan", "NaN", "-inf", "+Inf",
		"inf", "1e400", "-1e400", "0.1e+2", "1ee2", "00", "-0.0", "2e-400", "1_000", "0x10"}
	randStrings = []string{"", "x", "iPhone15,2", `a\"b`, `\\`, `\u00e9`, `\uD83D\uDE00`, `\uD800`, `\uD800\u0041`,
		`\uDC00\uD800`, `\u12`, `\uzzzz`, `\q`, `\n\t\r\b\f\/`, "raw\ttab", "\x01\xff", "2026-10-30T18:00:00Z",
		"2026-10-30T18:00:00.123456789-07:00", "2026-11-30T18:00:00Z", "2026-10-30T18:00:00\\u005a", "1999-12-31T23:59:60Z"}
	randWS = []string{"", "", "", " ", "\t", "\r", "  ", " \t\r "}
)

func randomRecord(r *rand.Rand) []byte {
	var b bytes.Buffer
	ws := func() { b.WriteString(randWS[r.IntN(len(randWS))]) }
	b.WriteByte('{')
	ws()
	first := true
	member := func(k string, v func()) {
		if !first {
			b.WriteByte(',')
			ws()
		}
		first = false
		b.WriteString(`"` + k + `"`)
		ws()
		b.WriteByte(':')
		ws()
		v()
		ws()
	}
	if r.IntN(10) > 0 {
		member("messageId", func() {
			if r.IntN(8) == 0 {
				randomValue(r, &b, 3)
			} else {
				b.WriteString(`"m` + randStrings[r.IntN(4)] + `"`)
			}
		})
	}
	if r.IntN(10) > 0 {
		member("timestamp", func() {
			if r.IntN(8) == 0 {
				randomValue(r, &b, 3)
			} else {
				b.WriteString(`"` + randStrings[16+r.IntN(5)] + `"`)
			}
		})
	}
	for range r.IntN(8) {
		member(randKeys[r.IntN(len(randKeys))], func() { randomValue(r, &b, 4) })
	}
	b.WriteByte('}')
	return b.Bytes()
}

func randomValue(r *rand.Rand, b *bytes.Buffer, depth int) {
	ws := func() { b.WriteString(randWS[r.IntN(len(randWS))]) }
	k := r.IntN(10)
	if depth <= 0 && k >= 7 {
		k = r.IntN(7)
	}
	switch k {
	case 0, 1:
		b.WriteString(`"` + randStrings[r.IntN(len(randStrings))] + `"`)
	case 2, 3:
		b.WriteString(randNumbers[r.IntN(len(randNumbers))])
	case 4:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	case 5, 6:
		b.WriteString(`"` + randKeys[r.IntN(len(randKeys))] + `"`)
	case 7, 8:
		b.WriteByte('{')
		ws()
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			b.WriteString(`"` + randKeys[r.IntN(len(randKeys))] + `"`)
			ws()
			b.WriteByte(':')
			ws()
			randomValue(r, b, depth-1)
			ws()
		}
		b.WriteByte('}')
	case 9:
		b.WriteByte('[')
		ws()
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			randomValue(r, b, depth-1)
			ws()
		}
		b.WriteByte(']')
	}
}

// mutate breaks a line the ways real lines break: a byte lost, a byte
// added, a cut.
func mutate(r *rand.Rand, line []byte) []byte {
	const alphabet = "\"\\{}[],: \t\x0b0-.eEnu/aAtfl\xff"
	out := bytes.Clone(line)
	for range 1 + r.IntN(2) {
		if len(out) == 0 {
			break
		}
		i := r.IntN(len(out))
		switch r.IntN(3) {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out = slices.Insert(out, i, alphabet[r.IntN(len(alphabet))])
		case 2:
			out = out[:i]
		}
	}
	return out
}

// FuzzFlattener: go test -run '^$' -fuzz FuzzFlattener ./pipeline/transform/
// Each input is a few lines, so column ids and the shape cache carry over
// from line to line as in a shard.
func FuzzFlattener(f *testing.F) {
	for _, l := range adversarialLines {
		f.Add([]byte(l))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		f.Add(randomRecord(r))
	}
	f.Add([]byte(ev("a", "2026-10-30T18:00:00Z", `"properties":{"price":10,"tags":["x", "y"]}`) + "\n" + ev("b", "2026-10-30T18:00:00Z")))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := newFlatPair(t)
		for _, l := range bytes.Split(data, []byte{'\n'}) {
			if !p.check(t, l) {
				return
			}
		}
	})
}
