package gluetest_test

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/smithy-go"

	"sluice/internal/testenv/gluetest"
)

func client(s *gluetest.Server, region, key, secret string) *glue.Client {
	return glue.New(glue.Options{
		BaseEndpoint:     aws.String(s.URL),
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		RetryMaxAttempts: 1,
	})
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// The stand-in refuses requests Glue would not authenticate.
func TestRefusesBadSignatures(t *testing.T) {
	s := gluetest.Start(t)
	s.AddDatabase("db")
	in := &glue.GetDatabaseInput{Name: aws.String("db")}
	if _, err := client(s, s.Region, s.AccessKey, s.SecretKey).GetDatabase(t.Context(), in); err != nil {
		t.Fatalf("a well-signed request: %v", err)
	}
	for _, c := range []struct {
		what, region, key, secret, code string
	}{
		{"wrong secret", s.Region, s.AccessKey, "not-the-secret", "InvalidSignatureException"},
		{"other region", "us-west-2", s.AccessKey, s.SecretKey, "InvalidSignatureException"},
		{"unknown key", s.Region, "AKIDOTHER", s.SecretKey, "UnrecognizedClientException"},
	} {
		_, err := client(s, c.region, c.key, c.secret).GetDatabase(t.Context(), in)
		if got := errorCode(err); got != c.code {
			t.Errorf("%s: %v (code %q), want %s", c.what, err, got, c.code)
		}
	}
	unsigned, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL, strings.NewReader(`{"Name":"db"}`))
	if err != nil {
		t.Fatal(err)
	}
	unsigned.Header.Set("Content-Type", "application/x-amz-json-1.1")
	unsigned.Header.Set("X-Amz-Target", "AWSGlue.GetDatabase")
	resp, err := http.DefaultClient.Do(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Amzn-Errortype"); resp.StatusCode != http.StatusForbidden || got != "MissingAuthenticationTokenException" {
		t.Errorf("an unsigned request: %d %s", resp.StatusCode, got)
	}
	if _, err := client(s, s.Region, s.AccessKey, s.SecretKey).GetTables(t.Context(), &glue.GetTablesInput{DatabaseName: aws.String("db")}); errorCode(err) != "UnknownOperationException" {
		t.Errorf("an operation not served: %v", err)
	}
}

// Databases and tables answer with Glue's typed errors, and UpdateTable
// is Glue's optimistic lock on VersionId.
func TestTablesAndVersions(t *testing.T) {
	s := gluetest.Start(t)
	c := client(s, s.Region, s.AccessKey, s.SecretKey)
	ctx := t.Context()
	input := func(params map[string]string) *types.TableInput {
		return &types.TableInput{Name: aws.String("Events"), TableType: aws.String("EXTERNAL_TABLE"), Parameters: params,
			StorageDescriptor: &types.StorageDescriptor{Location: aws.String("s3://lake/events"), Columns: []types.Column{{Name: aws.String("n"), Type: aws.String("bigint")}}}}
	}
	create := &glue.CreateTableInput{DatabaseName: aws.String("db"), TableInput: input(map[string]string{"table_type": "ICEBERG"})}
	var notFound *types.EntityNotFoundException
	if _, err := c.CreateTable(ctx, create); !errors.As(err, &notFound) {
		t.Fatalf("a table in a missing database: %v", err)
	}
	if _, err := c.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &types.DatabaseInput{Name: aws.String("DB")}}); err != nil {
		t.Fatal(err)
	}
	var exists *types.AlreadyExistsException
	if _, err := c.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &types.DatabaseInput{Name: aws.String("db")}}); !errors.As(err, &exists) {
		t.Fatalf("a database again: %v", err)
	}
	if _, err := c.CreateTable(ctx, create); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTable(ctx, create); !errors.As(err, &exists) {
		t.Fatalf("a table again: %v", err)
	}
	got, err := c.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String("db"), Name: aws.String("EVENTS")})
	if err != nil {
		t.Fatal(err)
	}
	v0 := aws.ToString(got.Table.VersionId)
	if aws.ToString(got.Table.Name) != "events" || aws.ToString(got.Table.DatabaseName) != "db" || v0 == "" {
		t.Fatalf("table %s.%s version %q", aws.ToString(got.Table.DatabaseName), aws.ToString(got.Table.Name), v0)
	}

	params := map[string]string{"table_type": "ICEBERG", "metadata_location": "s3://lake/events/metadata/1.json"}
	update := &glue.UpdateTableInput{DatabaseName: aws.String("db"), TableInput: input(params), VersionId: aws.String(v0)}
	if _, err := c.UpdateTable(ctx, update); err != nil {
		t.Fatal(err)
	}
	var conflict *types.ConcurrentModificationException
	if _, err := c.UpdateTable(ctx, update); !errors.As(err, &conflict) {
		t.Fatalf("an update at a stale version: %v", err)
	}
	got, err = c.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String("db"), Name: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	if v1 := aws.ToString(got.Table.VersionId); v1 == v0 || !maps.Equal(got.Table.Parameters, params) {
		t.Errorf("after an update: version %q (was %q), parameters %v, want %v", v1, v0, got.Table.Parameters, params)
	}
	update.VersionId = nil
	if _, err := c.UpdateTable(ctx, update); err != nil {
		t.Errorf("an unconditional update: %v", err)
	}
	if _, err := c.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String("db"), Name: aws.String("other")}); !errors.As(err, &notFound) {
		t.Errorf("a missing table: %v", err)
	}
}
