package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"sluice/pipeline/storage"
)

var _ storage.ConditionalPutter = (*Bucket)(nil)

// PutIfMatch is a conditional PutObject: If-Match with etag, or
// If-None-Match: * when etag is "". S3 (since 2024) and versitygw check the
// condition atomically with the write. The body is held in memory, so this
// is meant for small documents such as catalog tables; it is never a
// multipart upload.
func (b *Bucket) PutIfMatch(ctx context.Context, key string, body io.Reader, etag string) (string, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("put %s: read body: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           b.key(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(`"` + strings.Trim(etag, `"`) + `"`)
	}
	out, err := b.client.PutObject(ctx, in)
	// If-Match on a missing key is 404 NoSuchKey, on S3 as on versitygw.
	if isPreconditionFailed(err) || (etag != "" && isNotFound(err)) {
		return "", fmt.Errorf("put %s: %w", key, storage.ErrPreconditionFailed)
	}
	if err != nil {
		return "", b.fail(err, "put "+key)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`), nil
}

// isPreconditionFailed reports S3's 412 PreconditionFailed, and 409
// ConditionalRequestConflict, which S3 returns when another conditional
// write of the key is in flight: either way someone else won.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return false
}
