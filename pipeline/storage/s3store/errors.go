package s3store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"

	"sluice/pipeline/fault"
)

// permanentCodes are the S3 error codes no retry can change, each with what
// to fix. Everything else (5xx, SlowDown and the other throttling codes,
// resets, timeouts) is left to the SDK's retryer and then to the task's
// retries.
var permanentCodes = map[string]string{
	"NoSuchBucket":      "the bucket does not exist: check the location's bucket name, and the S3 endpoint (-s3-endpoint) and region (-s3-region) it is looked up at",
	"InvalidBucketName": "that is not a valid bucket name: check the location",
	"AccessDenied":      "access denied: give the credentials in use (AWS_ACCESS_KEY_ID, AWS_PROFILE or the instance role) this permission on the bucket and prefix, or check the bucket policy",
	"AllAccessDisabled": "all access to the bucket is disabled: check the bucket's owner and policy",
	// A HEAD request's 403 has no body to name a code; it is AccessDenied or
	// a signature the server refused.
	"Forbidden":          "access denied (a HEAD request names no reason): check the credentials in use and the bucket policy",
	"InvalidAccessKeyId": "the server knows no such access key: check AWS_ACCESS_KEY_ID (or the profile or role in use)",
	// versitygw's name for InvalidAccessKeyId.
	"XAdminUserNotFound":    "the server knows no such access key: check AWS_ACCESS_KEY_ID (or the profile or role in use)",
	"SignatureDoesNotMatch": "the server refused the request's signature: check AWS_SECRET_ACCESS_KEY against the access key",
	// S3's answer for a request signed for the wrong region.
	"AuthorizationHeaderMalformed": "the server refused the request's authorization, usually signed for the wrong region: check -s3-region or AWS_REGION",
	"PermanentRedirect":            "the bucket must be addressed at another endpoint, usually that of its region: check -s3-region and -s3-endpoint",
}

// classify tells an S3 error no retry can fix from a transient one. For a
// permanent error (a missing bucket, refused credentials, a bad signature or
// region) it returns what to fix and true. smithy's APIError (which the
// SDK's modeled types, such as types.NoSuchBucket, implement too) decides by
// its code, never the message; wrapped errors are seen through.
func classify(err error) (hint string, permanent bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		hint, permanent = permanentCodes[apiErr.ErrorCode()]
	}
	return hint, permanent
}

// fail wraps the error of an S3 request: what was done (op), and, when no
// retry can fix it, the bucket's location and what to fix, marked permanent
// so that the task fails at once.
func (b *Bucket) fail(err error, op string) error {
	hint, permanent := classify(err)
	if !permanent || fault.IsPermanent(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fault.Permanent(fmt.Errorf("%s in %s: %s: %w", op, b.Location(), hint, err))
}

// CheckEndpoint reports whether endpoint is an S3 endpoint URL, such as
// http://127.0.0.1:7070 or https://s3.eu-west-1.amazonaws.com. The empty
// string (AWS's endpoints) passes.
func CheckEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an endpoint URL such as https://host[:port]", endpoint)
	}
	return nil
}

// CheckRegion reports whether region looks like a region name such as
// us-east-1 (what the SDK would put into a host name and a signature). The
// empty string passes: New defaults it.
func CheckRegion(region string) error {
	if region == "" {
		return nil
	}
	if strings.Trim(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(region, "-") || strings.HasSuffix(region, "-") {
		return fmt.Errorf("%q is not a region name such as us-east-1", region)
	}
	return nil
}
