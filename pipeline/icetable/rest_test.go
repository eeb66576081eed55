package icetable_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"

	"sluice/pipeline/icetable"
	"sluice/pipeline/storage/filestore"
)

// restServer is a stand-in Iceberg REST catalog: the few endpoints the
// table's life takes (config, namespaces, create, load and commit a
// table), served from iceberg-go's SQL catalog on a SQLite file, one
// request at a time as a real server serialises a table's commits.
func restServer(t *testing.T) *httptest.Server {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "rest.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	cat, err := sqlcat.NewCatalog("rest", db, sqlcat.SQLite, iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close(); db.Close() })
	var mu sync.Mutex
	fail := func(w http.ResponseWriter, code int, typ string, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": err.Error(), "type": typ, "code": code}})
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	loaded := func(w http.ResponseWriter, tbl *table.Table) {
		reply(w, map[string]any{"metadata-location": tbl.MetadataLocation(), "metadata": tbl.Metadata(), "config": map[string]string{}})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"defaults": map[string]string{}, "overrides": map[string]string{}})
	})
	mux.HandleFunc("GET /v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		props, err := cat.LoadNamespaceProperties(r.Context(), table.Identifier{r.PathValue("ns")})
		if err != nil {
			fail(w, http.StatusNotFound, "NoSuchNamespaceException", err)
			return
		}
		reply(w, map[string]any{"namespace": []string{r.PathValue("ns")}, "properties": props})
	})
	mux.HandleFunc("HEAD /v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if ok, _ := cat.CheckNamespaceExists(r.Context(), table.Identifier{r.PathValue("ns")}); !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/namespaces", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var req struct {
			Namespace  []string           `json:"namespace"`
			Properties iceberg.Properties `json:"properties"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "BadRequestException", err)
			return
		}
		if err := cat.CreateNamespace(r.Context(), req.Namespace, req.Properties); err != nil {
			fail(w, http.StatusConflict, "AlreadyExistsException", err)
			return
		}
		reply(w, map[string]any{"namespace": req.Namespace, "properties": req.Properties})
	})
	mux.HandleFunc("POST /v1/namespaces/{ns}/tables", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var req struct {
			Name          string                 `json:"name"`
			Schema        *iceberg.Schema        `json:"schema"`
			Location      string                 `json:"location"`
			PartitionSpec *iceberg.PartitionSpec `json:"partition-spec"`
			Props         iceberg.Properties     `json:"properties"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "BadRequestException", err)
			return
		}
		tbl, err := cat.CreateTable(r.Context(), table.Identifier{r.PathValue("ns"), req.Name}, req.Schema,
			catalog.WithLocation(req.Location), catalog.WithPartitionSpec(req.PartitionSpec), catalog.WithProperties(req.Props))
		if err != nil {
			fail(w, http.StatusConflict, "AlreadyExistsException", err)
			return
		}
		loaded(w, tbl)
	})
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables/{t}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		tbl, err := cat.LoadTable(r.Context(), table.Identifier{r.PathValue("ns"), r.PathValue("t")})
		if err != nil {
			fail(w, http.StatusNotFound, "NoSuchTableException", err)
			return
		}
		loaded(w, tbl)
	})
	mux.HandleFunc("POST /v1/namespaces/{ns}/tables/{t}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var req struct {
			Requirements table.Requirements `json:"requirements"`
			Updates      table.Updates      `json:"updates"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "BadRequestException", err)
			return
		}
		md, loc, err := cat.CommitTable(r.Context(), table.Identifier{r.PathValue("ns"), r.PathValue("t")}, req.Requirements, req.Updates)
		if err != nil {
			if errors.Is(err, table.ErrCommitFailed) || strings.Contains(strings.ToLower(err.Error()), "requirement failed") {
				fail(w, http.StatusConflict, "CommitFailedException", err)
				return
			}
			fail(w, http.StatusInternalServerError, "ServerError", err)
			return
		}
		reply(w, map[string]any{"metadata-location": loc, "metadata": md})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The table's whole life (create, add columns, commits, a retried commit,
// time travel, rollback, concurrent commits, expiry, orphans) through
// iceberg-go's REST catalog client.
func TestTableOnRESTCatalog(t *testing.T) {
	srv := restServer(t)
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exerciseWith(t, b, nil, icetable.CatalogConfig{Type: icetable.CatalogREST, URI: srv.URL})
	if _, err := b.Stat(t.Context(), icetable.CatalogKey); err == nil {
		t.Error("a REST catalog's table has an embedded catalog file")
	}
}
