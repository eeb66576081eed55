package s3store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for err, want := range map[error]bool{
		api("AccessDenied"):          true,
		api("InvalidAccessKeyId"):    true,
		api("SignatureDoesNotMatch"): true,
		&types.NoSuchBucket{}:        true,
		fmt.Errorf("list: %w", &smithy.OperationError{ServiceID: "S3", OperationName: "ListObjectsV2", Err: &types.NoSuchBucket{}}): true,
		api("SlowDown"):                              false,
		api("InternalError"):                         false,
		api("NoSuchKey"):                             false, // storage.ErrNotExist, decided by the caller
		context.DeadlineExceeded:                     false,
		errors.New("read: connection reset by peer"): false,
	} {
		if hint, got := classify(err); got != want || (got && hint == "") {
			t.Errorf("classify(%v) = %q, %v; want permanent %v with a hint", err, hint, got, want)
		}
	}
}
