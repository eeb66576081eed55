// Package gluetest is a stand-in for the AWS Glue Data Catalog: an HTTP
// server on loopback speaking Glue's wire protocol (AWS JSON 1.1) for the
// operations Sluice's Glue clients call, so tests run the real AWS SDK and
// iceberg-go's Glue catalog against it. There is no Glue to test against
// here and no local emulator of it; this is the faithful stand-in the
// house rule asks for at that HTTP boundary.
//
// It is not Glue. What it checks, as Glue documents it:
//
//   - the protocol: POST, Content-Type application/x-amz-json-1.1,
//     X-Amz-Target AWSGlue.<Operation>; any other operation is refused
//     (UnknownOperationException), including real ones it does not serve;
//   - Signature Version 4: the request must be signed for service glue in
//     the stand-in's region with its access key, and the signature is
//     recomputed from the signed headers and the body and compared
//     (MissingAuthenticationTokenException, UnrecognizedClientException,
//     InvalidSignatureException); a signing time more than 15 minutes off
//     is refused as Glue refuses it;
//   - names: databases and tables are stored lower-case and found
//     whatever the case asked (Glue's Hive compatibility); required names,
//     1 to 255 bytes;
//   - databases: CreateDatabase of an existing one is AlreadyExistsException;
//     GetDatabase, and table operations in a missing one, are
//     EntityNotFoundException;
//   - tables: CreateTable of an existing one is AlreadyExistsException,
//     GetTable and UpdateTable of a missing one EntityNotFoundException;
//     every CreateTable and UpdateTable gives the table a new VersionId (a
//     counter from 0, as a string), and an UpdateTable that names a
//     VersionId other than the current one is refused with
//     ConcurrentModificationException (Glue's optimistic locking); without
//     one it applies unconditionally, as Glue's does;
//   - the TableInput is kept as given (Parameters, StorageDescriptor,
//     PartitionKeys…) and returned by GetTable with the fields Glue adds
//     (DatabaseName, VersionId, CreateTime, UpdateTime, CatalogId);
//     Parameters keys must be 1 to 255 bytes and values at most 512000,
//     column names 1 to 255 bytes and types at most 131072, as Glue's API
//     reference bounds them (InvalidInputException);
//   - BatchCreatePartition: 1 to 100 partitions (ValidationException), one
//     value per partition key (InvalidInputException), an existing
//     partition reported in Errors as AlreadyExistsException. It also
//     wants an s3:// location per partition, which is Athena's need
//     rather than a documented Glue rule (kept from gluesync's earlier
//     fake).
//
// What it does not do: IAM and Lake Formation permissions (any caller
// with the key may do anything in the stand-in's one catalog, CatalogID;
// a request naming another is AccessDeniedException), resource policies,
// table version archives (SkipArchive is accepted and ignored;
// GetTableVersions is not served), transactions (TransactionId), quotas
// and throttling, GetTables and the delete operations, pagination; and
// the error messages are not Glue's word for word (the __type is).
// Whether Glue's first VersionId is "0" is not verified: clients must
// treat it as opaque, and iceberg-go does.
package gluetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running Glue stand-in. Point an AWS SDK Glue client at URL
// (BaseEndpoint) with Region and the static credentials AccessKey and
// SecretKey.
type Server struct {
	URL       string
	Region    string
	AccessKey string
	SecretKey string
	// CatalogID is the account id GetTable reports (Glue's CatalogId).
	CatalogID string

	// CheckTableInput, when set, is asked about every CreateTable's and
	// UpdateTable's TableInput (as sent, JSON); a non-empty answer
	// refuses the request with InvalidInputException. It is for a test's
	// own rules (what its reader, say Athena, needs of a table), which
	// Glue itself does not enforce.
	CheckTableInput func(tableInput json.RawMessage) string

	mu        sync.Mutex
	databases map[string]*database
	calls     []string
	before    map[string][]func() // operation -> hooks run once on its next call
}

type database struct {
	input  map[string]any // DatabaseInput as given
	tables map[string]*glueTable
}

type glueTable struct {
	input      map[string]any // TableInput as given
	version    int
	history    []map[string]string // every version's Parameters, oldest first
	created    time.Time
	updated    time.Time
	partitions map[string]bool // values joined by "/"
}

// Start starts a stand-in for tb, stopped when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{Region: "eu-west-1", AccessKey: "AKIDGLUESTANDIN", SecretKey: "glue-stand-in-secret", CatalogID: "123456789012",
		databases: map[string]*database{}, before: map[string][]func(){}}
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddDatabase creates a database directly (not through the API, so it is
// not among Calls): the setup a test's account would already have.
func (s *Server) AddDatabase(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.ToLower(name)
	if s.databases[name] == nil {
		s.databases[name] = &database{input: map[string]any{"Name": name}, tables: map[string]*glueTable{}}
	}
}

// Calls are the operations served so far, in order (signed requests for
// known operations only).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls forgets the operations served so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Table is the table as GetTable returns it (decoded JSON), or nil.
func (s *Server) Table(db, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(db, name)
	if t == nil {
		return nil
	}
	return s.tableOutput(strings.ToLower(db), t)
}

// Parameters are the table's Parameters, or nil when there is no table.
func (s *Server) Parameters(db, name string) map[string]string {
	t := s.Table(db, name)
	if t == nil {
		return nil
	}
	return parameters(t)
}

// History is the Parameters of every version the table had, oldest
// first, whether or not the writer asked Glue to archive them
// (SkipArchive): the stand-in's own record, for tests to check what a
// reader would have seen after each change.
func (s *Server) History(db, name string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(db, name)
	if t == nil {
		return nil
	}
	return slices.Clone(t.history)
}

// parameters are a TableInput's Parameters as strings.
func parameters(in map[string]any) map[string]string {
	out := map[string]string{}
	params, _ := in["Parameters"].(map[string]any)
	for k, v := range params {
		out[k], _ = v.(string)
	}
	return out
}

// BeforeNext runs fn once, when the next request for operation op has
// been authenticated and before it is applied, with no lock held: fn may
// call the stand-in itself (another writer committing first, to force a
// lost race deterministically).
func (s *Server) BeforeNext(op string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before[op] = append(s.before[op], fn)
}

func (s *Server) takeHook(op string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	hooks := s.before[op]
	if len(hooks) == 0 {
		return nil
	}
	s.before[op] = hooks[1:]
	return hooks[0]
}

// glueError is an error reply in Glue's shape: the HTTP status and the
// __type the SDK turns into its typed error.
type glueError struct {
	status int
	typ    string
	msg    string
}

func (e *glueError) Error() string { return e.typ + ": " + e.msg }

func errorf(status int, typ, format string, args ...any) *glueError {
	return &glueError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *glueError {
	return errorf(http.StatusBadRequest, "InvalidInputException", format, args...)
}

func notFound(format string, args ...any) *glueError {
	return errorf(http.StatusBadRequest, "EntityNotFoundException", format, args...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, gerr := s.serve(r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", strconv.FormatInt(time.Now().UnixNano(), 36))
	if gerr != nil {
		w.Header().Set("X-Amzn-Errortype", gerr.typ)
		w.WriteHeader(gerr.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": gerr.typ, "Message": gerr.msg}) // the client reads what arrives
		return
	}
	_ = json.NewEncoder(w).Encode(out) // the client reads what arrives
}

// operations are those served, by X-Amz-Target.
var operations = map[string]func(*Server, request) (any, *glueError){
	"GetDatabase":          (*Server).getDatabase,
	"CreateDatabase":       (*Server).createDatabase,
	"GetTable":             (*Server).getTable,
	"CreateTable":          (*Server).createTable,
	"UpdateTable":          (*Server).updateTable,
	"BatchCreatePartition": (*Server).batchCreatePartition,
}

// request is the union of the fields the served operations take.
type request struct {
	CatalogID          string          `json:"CatalogId"`
	DatabaseName       string          `json:"DatabaseName"`
	Name               string          `json:"Name"`
	TableName          string          `json:"TableName"`
	VersionID          *string         `json:"VersionId"`
	SkipArchive        *bool           `json:"SkipArchive"`
	DatabaseInput      json.RawMessage `json:"DatabaseInput"`
	TableInput         json.RawMessage `json:"TableInput"`
	PartitionInputList []struct {
		Values            []string
		StorageDescriptor *struct{ Location string }
	} `json:"PartitionInputList"`
}

func (s *Server) serve(r *http.Request) (any, *glueError) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSGlue.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		return nil, errorf(http.StatusBadRequest, "UnknownOperationException", "POST / with application/x-amz-json-1.1 expected")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "SerializationException", "read the body: %v", err)
	}
	if gerr := s.checkSignature(r, body, time.Now()); gerr != nil {
		return nil, gerr
	}
	handle, known := operations[op]
	if !ok || !known {
		return nil, errorf(http.StatusBadRequest, "UnknownOperationException", "operation %q is not served by the Glue stand-in", r.Header.Get("X-Amz-Target"))
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	if req.CatalogID != "" && req.CatalogID != s.CatalogID {
		// Another account's catalog: the caller has no grant on it.
		return nil, errorf(http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: glue:%s on resource: arn:aws:glue:%s:%s:catalog", op, s.Region, req.CatalogID)
	}
	if hook := s.takeHook(op); hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, op)
	return handle(s, req)
}

// checkName is Glue's bound on database and table names.
func checkName(field, v string) *glueError {
	if v == "" || len(v) > 255 || strings.ContainsAny(v, "\n\r") {
		return errorf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between 1 and 255 and be a single line", field)
	}
	return nil
}

func (s *Server) database(name string) (*database, *glueError) {
	if gerr := checkName("databaseName", name); gerr != nil {
		return nil, gerr
	}
	db := s.databases[strings.ToLower(name)]
	if db == nil {
		return nil, notFound("Database %s not found.", name)
	}
	return db, nil
}

func (s *Server) table(db, name string) *glueTable {
	d := s.databases[strings.ToLower(db)]
	if d == nil {
		return nil
	}
	return d.tables[strings.ToLower(name)]
}

func (s *Server) getDatabase(req request) (any, *glueError) {
	db, gerr := s.database(req.Name)
	if gerr != nil {
		return nil, gerr
	}
	out := clone(db.input)
	out["CatalogId"] = s.CatalogID
	return map[string]any{"Database": out}, nil
}

func (s *Server) createDatabase(req request) (any, *glueError) {
	var in map[string]any
	if err := json.Unmarshal(req.DatabaseInput, &in); err != nil || in == nil {
		return nil, errorf(http.StatusBadRequest, "ValidationException", "DatabaseInput is required")
	}
	name, _ := in["Name"].(string)
	if gerr := checkName("databaseInput.name", name); gerr != nil {
		return nil, gerr
	}
	if gerr := checkParameters("DatabaseInput", in["Parameters"]); gerr != nil {
		return nil, gerr
	}
	name = strings.ToLower(name)
	if s.databases[name] != nil {
		return nil, errorf(http.StatusBadRequest, "AlreadyExistsException", "Database already exists.")
	}
	in["Name"] = name
	in["CreateTime"] = epoch(time.Now())
	s.databases[name] = &database{input: in, tables: map[string]*glueTable{}}
	return map[string]any{}, nil
}

func (s *Server) getTable(req request) (any, *glueError) {
	db, gerr := s.database(req.DatabaseName)
	if gerr != nil {
		return nil, gerr
	}
	if gerr := checkName("name", req.Name); gerr != nil {
		return nil, gerr
	}
	t := db.tables[strings.ToLower(req.Name)]
	if t == nil {
		return nil, notFound("Table %s not found.", req.Name)
	}
	return map[string]any{"Table": s.tableOutput(strings.ToLower(req.DatabaseName), t)}, nil
}

// tableOutput is t as GetTable returns it: its input and Glue's fields.
func (s *Server) tableOutput(db string, t *glueTable) map[string]any {
	out := clone(t.input)
	out["DatabaseName"] = db
	out["CatalogId"] = s.CatalogID
	out["VersionId"] = strconv.Itoa(t.version)
	out["CreateTime"] = epoch(t.created)
	out["UpdateTime"] = epoch(t.updated)
	out["IsRegisteredWithLakeFormation"] = false
	return out
}

func (s *Server) createTable(req request) (any, *glueError) {
	db, gerr := s.database(req.DatabaseName)
	if gerr != nil {
		return nil, gerr
	}
	in, name, gerr := s.tableInput(req.TableInput)
	if gerr != nil {
		return nil, gerr
	}
	if db.tables[name] != nil {
		return nil, errorf(http.StatusBadRequest, "AlreadyExistsException", "Table already exists.")
	}
	now := time.Now()
	db.tables[name] = &glueTable{input: in, created: now, updated: now, partitions: map[string]bool{}, history: []map[string]string{parameters(in)}}
	return map[string]any{}, nil
}

func (s *Server) updateTable(req request) (any, *glueError) {
	db, gerr := s.database(req.DatabaseName)
	if gerr != nil {
		return nil, gerr
	}
	in, name, gerr := s.tableInput(req.TableInput)
	if gerr != nil {
		return nil, gerr
	}
	t := db.tables[name]
	if t == nil {
		return nil, notFound("Table %s not found.", name)
	}
	if req.VersionID != nil && *req.VersionID != strconv.Itoa(t.version) {
		return nil, errorf(http.StatusBadRequest, "ConcurrentModificationException",
			"Update table failed due to concurrent modifications: version %s was asked, the table is at %d.", *req.VersionID, t.version)
	}
	t.input, t.version, t.updated = in, t.version+1, time.Now()
	t.history = append(t.history, parameters(in))
	return map[string]any{}, nil
}

// tableInput decodes and checks a TableInput, returning it with its name
// lower-cased (as Glue stores it) and that name.
func (s *Server) tableInput(raw json.RawMessage) (map[string]any, string, *glueError) {
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return nil, "", errorf(http.StatusBadRequest, "ValidationException", "TableInput is required")
	}
	name, _ := in["Name"].(string)
	if gerr := checkName("tableInput.name", name); gerr != nil {
		return nil, "", gerr
	}
	if gerr := checkParameters("TableInput", in["Parameters"]); gerr != nil {
		return nil, "", gerr
	}
	if gerr := checkColumns(in); gerr != nil {
		return nil, "", gerr
	}
	if s.CheckTableInput != nil {
		if msg := s.CheckTableInput(raw); msg != "" {
			return nil, "", invalid("%s", msg)
		}
	}
	name = strings.ToLower(name)
	in["Name"] = name
	return in, name, nil
}

// checkParameters bounds a Parameters map as Glue's API reference does.
func checkParameters(where string, v any) *glueError {
	if v == nil {
		return nil
	}
	params, ok := v.(map[string]any)
	if !ok {
		return errorf(http.StatusBadRequest, "SerializationException", "%s.Parameters is not a map", where)
	}
	for k, val := range params {
		s, ok := val.(string)
		switch {
		case !ok:
			return errorf(http.StatusBadRequest, "SerializationException", "%s.Parameters[%q] is not a string", where, k)
		case k == "" || len(k) > 255:
			return invalid("%s.Parameters: key %q is not 1 to 255 bytes", where, k)
		case len(s) > 512000:
			return invalid("%s.Parameters[%q]: value is over 512000 bytes", where, k)
		}
	}
	return nil
}

// checkColumns bounds the columns and partition keys of a TableInput.
func checkColumns(in map[string]any) *glueError {
	var cols []any
	if sd, ok := in["StorageDescriptor"].(map[string]any); ok {
		c, _ := sd["Columns"].([]any)
		cols = append(cols, c...)
		if loc, _ := sd["Location"].(string); len(loc) > 2056 {
			return invalid("StorageDescriptor.Location is over 2056 bytes")
		}
	}
	pk, _ := in["PartitionKeys"].([]any)
	for _, c := range append(cols, pk...) {
		col, _ := c.(map[string]any)
		name, _ := col["Name"].(string)
		typ, _ := col["Type"].(string)
		if name == "" || len(name) > 255 || len(typ) > 131072 {
			return invalid("column %v: a name of 1 to 255 bytes and a type of at most 131072 are required", col)
		}
		if gerr := checkParameters("Column", col["Parameters"]); gerr != nil {
			return gerr
		}
	}
	return nil
}

func (s *Server) batchCreatePartition(req request) (any, *glueError) {
	db, gerr := s.database(req.DatabaseName)
	if gerr != nil {
		return nil, gerr
	}
	t := db.tables[strings.ToLower(req.TableName)]
	if t == nil {
		return nil, notFound("Table %s not found.", req.TableName)
	}
	if n := len(req.PartitionInputList); n == 0 || n > 100 {
		return nil, errorf(http.StatusBadRequest, "ValidationException",
			"1 validation error detected: Value at 'partitionInputList' failed to satisfy constraint: Member must have length less than or equal to 100 (got %d)", n)
	}
	pk, _ := t.input["PartitionKeys"].([]any)
	var errs []any
	for _, p := range req.PartitionInputList {
		if len(p.Values) != len(pk) || p.StorageDescriptor == nil || !strings.HasPrefix(p.StorageDescriptor.Location, "s3://") {
			return nil, invalid("partition %v: %d values for %d keys, or no s3 location", p.Values, len(p.Values), len(pk))
		}
		v := strings.Join(p.Values, "/")
		if t.partitions[v] {
			errs = append(errs, map[string]any{"PartitionValues": p.Values,
				"ErrorDetail": map[string]string{"ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."}})
			continue
		}
		t.partitions[v] = true
	}
	return map[string]any{"Errors": errs}, nil
}

// clone is a deep copy of decoded JSON, so that what a caller holds is
// not the stored table.
func clone(m map[string]any) map[string]any {
	var out map[string]any
	raw, _ := json.Marshal(m)
	_ = json.Unmarshal(raw, &out) // it came from JSON
	return out
}

// epoch is a timestamp as AWS JSON 1.1 carries it: seconds since 1970.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// maxClockSkew is how far a request's signing time may be from Glue's.
const maxClockSkew = 15 * time.Minute

// checkSignature verifies r's Signature Version 4 (the Authorization
// header form) against the stand-in's credentials, region and service.
func (s *Server) checkSignature(r *http.Request, body []byte, now time.Time) *glueError {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return errorf(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	signed := strings.Split(fields["SignedHeaders"], ";")
	if len(scope) != 5 || fields["Signature"] == "" || !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return errorf(http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders (host and x-amz-date among them) and Signature")
	}
	if scope[0] != s.AccessKey {
		return errorf(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || scope[1] != amzDate[:8] {
		return errorf(http.StatusBadRequest, "IncompleteSignatureException", "X-Amz-Date %q is not the credential scope's date", amzDate)
	}
	if d := now.Sub(at); d > maxClockSkew || d < -maxClockSkew {
		return errorf(http.StatusBadRequest, "InvalidSignatureException", "Signature expired: %s is now earlier than %s", amzDate, now.Add(-maxClockSkew).UTC().Format("20060102T150405Z"))
	}
	if scope[2] != s.Region || scope[3] != "glue" || scope[4] != "aws4_request" {
		return errorf(http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped to a valid region and service glue, not %s/%s", scope[2], scope[3])
	}
	want := signature(s.SecretKey, scope, amzDate, canonicalRequest(r, signed, body))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return errorf(http.StatusBadRequest, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return nil
}

// canonicalRequest is SigV4's canonical form of r for the signed headers.
func canonicalRequest(r *http.Request, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n" + r.URL.Query().Encode() + "\n")
	for _, h := range signed {
		v := slices.Clone(r.Header.Values(h))
		if h == "host" {
			v = []string{r.Host}
		}
		if h == "content-length" {
			v = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		for i := range v {
			v[i] = strings.Join(strings.Fields(v[i]), " ")
		}
		b.WriteString(h + ":" + strings.Join(v, ",") + "\n")
	}
	sum := sha256.Sum256(body)
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + hex.EncodeToString(sum[:]))
	return b.String()
}

// signature is SigV4's signature of a canonical request.
func signature(secret string, scope []string, amzDate, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range scope[1:] {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
