package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"sluice/pipeline/fault"
	"sluice/pipeline/storage"
)

const (
	// DefaultPartSize is the multipart threshold and part size when
	// Options.PartSize is zero.
	DefaultPartSize = 64 << 20
	// MinPartSize is the smallest part S3 accepts (except the last one).
	MinPartSize = 5 << 20
)

// Options configure a Bucket. The zero value uses the standard AWS
// configuration chain with region us-east-1 when none is configured.
type Options struct {
	// Endpoint is the S3 endpoint URL, e.g. http://127.0.0.1:7070. When
	// empty, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL apply, else AWS.
	Endpoint string
	// Region overrides the configured region; when neither is set the
	// region is us-east-1.
	Region string
	// PathStyle addresses buckets as endpoint/bucket/key rather than
	// bucket.endpoint/key. Most self-hosted S3 servers need it.
	PathStyle bool
	// AccessKey and SecretKey, when set, replace the credential chain
	// with these static credentials.
	AccessKey, SecretKey string
	// PartSize is the size above which Put uses a multipart upload, and the
	// size of each part. Zero means DefaultPartSize; at least MinPartSize.
	PartSize int64
	// Concurrency is how many parts of one object upload at a time; zero
	// means 4.
	Concurrency int
	// TempDir is where Put spools bodies; empty means os.TempDir().
	TempDir string
	// ReadResumes is how many times the body of one Get or GetRange that
	// breaks mid-stream is resumed (a ranged GET of the rest, If-Match the
	// first response's ETag) before the read fails; zero means
	// DefaultReadResumes, negative none.
	ReadResumes int
	// ResumeBackoff is the wait before the first resume, doubling for each
	// further one; zero means DefaultResumeBackoff.
	ResumeBackoff time.Duration
	// Log receives a warning for every resume; nil logs nothing.
	Log *slog.Logger
}

// Bucket is a storage.Bucket over an S3 bucket, optionally below a prefix.
type Bucket struct {
	client *s3.Client
	bucket string
	prefix string // "" or ends in "/"
	opts   Options
	// uploader puts objects, in parts above the part size. It is the SDK's
	// upload manager (feature/s3/manager): it reads the parts of a body that
	// is an io.ReaderAt straight from it, where its successor
	// (feature/s3/transfermanager, v0.5) copies every part into memory, which
	// a worker's memory limit cannot afford.
	uploader *manager.Uploader
}

var (
	_ storage.Bucket       = (*Bucket)(nil)
	_ storage.Copier       = (*Bucket)(nil)
	_ storage.BatchDeleter = (*Bucket)(nil)
)

// New returns a Bucket for the S3 bucket, with every key stored below prefix
// (which may be empty). It does not contact the server. A configuration no
// request could work with (a bad endpoint or region, half a key pair) is a
// permanent error (pipeline/fault).
func New(ctx context.Context, bucket, prefix string, opts Options) (*Bucket, error) {
	b, err := newBucket(ctx, bucket, prefix, opts)
	if err != nil {
		return nil, fault.Permanent(err)
	}
	return b, nil
}

func newBucket(ctx context.Context, bucket, prefix string, opts Options) (*Bucket, error) {
	if bucket == "" {
		return nil, errors.New("s3 bucket name is empty")
	}
	if err := CheckEndpoint(opts.Endpoint); err != nil {
		return nil, fmt.Errorf("s3 endpoint: %w", err)
	}
	if err := CheckRegion(opts.Region); err != nil {
		return nil, fmt.Errorf("s3 region: %w", err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3 part size %d is below the minimum %d", opts.PartSize, MinPartSize)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, errors.New("s3 access key and secret key must be set together")
	}

	loadOpts := []func(*config.LoadOptions) error{config.WithDefaultRegion("us-east-1")}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Applied after the config's own endpoint, so an explicit Endpoint
		// wins over AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL.
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// A ranged GET (GetRange, a resume) carries no checksum of the
		// object; the SDK would print a debug line for every one.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	// The environment and the AWS config files may set both too; a bad value
	// from there would fail every request with an error of no SDK type.
	if err := CheckEndpoint(aws.ToString(client.Options().BaseEndpoint)); err != nil {
		return nil, fmt.Errorf("s3 endpoint (from AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the AWS config file): %w", err)
	}
	if region := client.Options().Region; region == "" || CheckRegion(region) != nil {
		return nil, fmt.Errorf("s3 region (from AWS_REGION or the AWS config file): %q is not a region name such as us-east-1", region)
	}

	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	b := &Bucket{client: client, bucket: bucket, prefix: prefix, opts: opts}
	b.uploader = manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = opts.PartSize
		u.Concurrency = opts.Concurrency
	})
	return b, nil
}

// Location returns s3://bucket or s3://bucket/prefix.
func (b *Bucket) Location() string {
	if b.prefix == "" {
		return "s3://" + b.bucket
	}
	return "s3://" + b.bucket + "/" + strings.TrimSuffix(b.prefix, "/")
}

// Client returns the underlying S3 client.
func (b *Bucket) Client() *s3.Client { return b.client }

func (b *Bucket) key(key string) *string { return aws.String(b.prefix + key) }

// isNotFound reports whether err is S3's answer for a missing key: NoSuchKey
// from GET, or NotFound from HEAD, which has no body to name an error code.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// Get opens the object at key. The body is tied to ctx; one that breaks
// mid-stream resumes where it broke (Options.ReadResumes).
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: b.key(key)})
	if isNotFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	if err != nil {
		return nil, b.fail(err, "get "+key)
	}
	return b.newResumingBody(ctx, key, 0, out), nil
}

// GetRange opens length bytes of the object at key from offset, with an
// HTTP Range request. The body resumes as Get's does.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 {
		rng += strconv.FormatInt(offset+length-1, 10)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: b.key(key), Range: aws.String(rng)})
	if isNotFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		// The range starts at or past the end: nothing to read, as a
		// folder or memory read of the same range gives.
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, b.fail(err, "get "+key+" "+rng)
	}
	return b.newResumingBody(ctx, key, offset, out), nil
}

// Stat describes the object at key.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: b.key(key)})
	if isNotFound(err) {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	if err != nil {
		return storage.ObjectInfo{}, b.fail(err, "stat "+key)
	}
	return storage.ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// Copy copies src to dst on the server (CopyObject), so publishing a staged
// file moves no data through the worker. CopyObject takes objects up to
// 5 GB, far above one output partition's file.
func (b *Bucket) Copy(ctx context.Context, src, dst string) error {
	_, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &b.bucket,
		// The source is "bucket/key", URL-encoded (keys hold '=' and more).
		CopySource: aws.String(b.bucket + "/" + url.PathEscape(b.prefix+src)),
		Key:        b.key(dst),
	})
	if isNotFound(err) {
		return fmt.Errorf("copy %s: %w", src, storage.ErrNotExist)
	}
	if err != nil {
		return b.fail(err, "copy "+src+" to "+dst)
	}
	return nil
}

// Delete removes the object at key; S3 treats a missing key as deleted.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: b.key(key)})
	if err != nil && !isNotFound(err) {
		return b.fail(err, "delete "+key)
	}
	return nil
}

// DeleteBatch removes up to 1000 keys in one DeleteObjects request.
func (b *Bucket) DeleteBatch(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = types.ObjectIdentifier{Key: b.key(k)}
	}
	out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &b.bucket,
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return b.fail(err, fmt.Sprintf("delete %d objects", len(keys)))
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		// A key's error is an API error of its own (AccessDenied, say).
		keyErr := &smithy.GenericAPIError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
		return b.fail(keyErr, "delete "+strings.TrimPrefix(aws.ToString(e.Key), b.prefix))
	}
	return nil
}

// List calls fn for every object below prefix, in S3's order, which is
// lexical by UTF-8 bytes.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: &b.bucket,
		Prefix: aws.String(b.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.fail(err, "list "+prefix)
		}
		for _, obj := range page.Contents {
			info := storage.ObjectInfo{
				Key:     strings.TrimPrefix(aws.ToString(obj.Key), b.prefix),
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
				ETag:    strings.Trim(aws.ToString(obj.ETag), `"`),
			}
			if err := fn(info); err != nil {
				return fmt.Errorf("list %s: %w", prefix, err)
			}
		}
	}
	return nil
}

// ListDirs returns the common prefixes directly below prefix, using the
// delimiter "/".
func (b *Bucket) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket:    &b.bucket,
		Prefix:    aws.String(b.prefix + prefix),
		Delimiter: aws.String("/"),
	})
	var dirs []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.fail(err, "list dirs "+prefix)
		}
		for _, cp := range page.CommonPrefixes {
			dirs = append(dirs, strings.TrimPrefix(aws.ToString(cp.Prefix), b.prefix))
		}
	}
	return dirs, nil
}

// Put spools body to a temporary file, then uploads it in one request or, above
// PartSize, as a multipart upload. S3 never shows a partial object.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader) error {
	f, err := os.CreateTemp(b.opts.TempDir, "sluice-s3-put-*")
	if err != nil {
		return fmt.Errorf("put %s: spool: %w", key, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	size, err := io.Copy(f, body)
	if err != nil {
		return fmt.Errorf("put %s: spool: %w", key, err)
	}
	// A body that is an io.ReaderAt is uploaded in parts straight from the
	// file, without the uploader copying each part into memory.
	_, err = b.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket: &b.bucket,
		Key:    b.key(key),
		Body:   io.NewSectionReader(f, 0, size),
	})
	if err != nil {
		return b.fail(err, "put "+key)
	}
	return nil
}
