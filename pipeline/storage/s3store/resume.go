package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	// DefaultReadResumes is how many times a GET body that breaks
	// mid-stream is resumed when Options.ReadResumes is zero.
	DefaultReadResumes = 4
	// DefaultResumeBackoff is the wait before the first resume when
	// Options.ResumeBackoff is zero; it doubles for each further one.
	DefaultResumeBackoff = 100 * time.Millisecond
)

// resumingBody is the body of a GET. The SDK retries a request until its
// response headers arrive, but not the reading of the body after it
// returns, so a connection that breaks mid-stream (a reset, an unexpected
// EOF, a body shorter than its Content-Length) would fail the reader. This
// body asks again for the rest instead: a ranged GET from the first byte not
// yet delivered, If-Match the first response's ETag, so a replaced object
// is an error rather than two versions spliced. It does so a bounded number
// of times, waiting a little longer before each.
type resumingBody struct {
	ctx  context.Context
	b    *Bucket
	key  string
	etag string // the first response's, quoted as S3 sends it
	body io.ReadCloser
	next int64 // object offset of the next byte to deliver
	end  int64 // object offset after the last byte wanted; -1: unknown

	resumes int
	broken  error // why body broke; the next Read resumes
	err     error // final: every Read returns it
}

// newResumingBody wraps the response to a GET of key whose body starts at
// object offset start.
func (b *Bucket) newResumingBody(ctx context.Context, key string, start int64, out *s3.GetObjectOutput) *resumingBody {
	end := int64(-1)
	if out.ContentLength != nil {
		end = start + *out.ContentLength
	}
	return &resumingBody{ctx: ctx, b: b, key: key, etag: aws.ToString(out.ETag), body: out.Body, next: start, end: end}
}

func (r *resumingBody) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.broken != nil {
			if err := r.resume(); err != nil {
				r.err = err
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.next += int64(n)
		if err == io.EOF && r.end >= 0 && r.next < r.end {
			err = fmt.Errorf("body ended %d bytes short: %w", r.end-r.next, io.ErrUnexpectedEOF)
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		if r.ctx.Err() != nil || (r.end >= 0 && r.next >= r.end) {
			// Canceled, or every byte is there and the error is about the
			// whole (a checksum): nothing a resume can fix.
			r.err = fmt.Errorf("get %s: %w", r.key, err)
			return n, r.err
		}
		r.broken = err
		if n > 0 {
			return n, nil
		}
	}
}

// resume replaces the broken body with a ranged GET of the rest, trying up
// to the bucket's budget of resumes in all.
func (r *resumingBody) resume() error {
	cause := r.broken
	r.body.Close()
	budget := r.b.readResumes()
	for {
		if r.resumes >= budget {
			return fmt.Errorf("get %s: the body broke at byte %d%s after %d resumes (at most %d, -s3-read-resumes): %w",
				r.key, r.next, r.of(), r.resumes, budget, cause)
		}
		if r.etag == "" {
			return fmt.Errorf("get %s: the body broke at byte %d%s and the server sent no ETag to resume it by: %w", r.key, r.next, r.of(), cause)
		}
		wait := time.NewTimer(r.b.resumeBackoff() << r.resumes)
		select {
		case <-r.ctx.Done():
			wait.Stop()
			return fmt.Errorf("get %s: the body broke at byte %d%s: %w (and then %w)", r.key, r.next, r.of(), cause, r.ctx.Err())
		case <-wait.C:
		}
		r.resumes++
		rng := "bytes=" + strconv.FormatInt(r.next, 10) + "-"
		if r.end >= 0 {
			rng += strconv.FormatInt(r.end-1, 10)
		}
		r.b.opts.Log.Warn("s3 read resumed", "location", r.b.Location(), "key", r.key, "offset", r.next,
			"resume", r.resumes, "of", budget, "err", cause)
		out, err := r.b.client.GetObject(r.ctx, &s3.GetObjectInput{
			Bucket: &r.b.bucket, Key: r.b.key(r.key), Range: aws.String(rng), IfMatch: aws.String(r.etag),
		})
		switch {
		case isPreconditionFailed(err):
			return fmt.Errorf("get %s: the object changed while it was read (its ETag is no longer %s after %d bytes); not splicing two versions: %w",
				r.key, r.etag, r.next, err)
		case err != nil:
			if _, permanent := classify(err); permanent || isNotFound(err) || r.ctx.Err() != nil {
				return r.b.fail(err, "get "+r.key+" "+rng)
			}
			cause = err // the SDK's retries of this request failed too: count it, try again
			continue
		}
		if start, ok := rangeStart(aws.ToString(out.ContentRange)); !ok || start != r.next {
			out.Body.Close()
			return fmt.Errorf("get %s: resuming at byte %d, the server answered the range %q with %q", r.key, r.next, rng, aws.ToString(out.ContentRange))
		}
		r.body, r.broken = out.Body, nil
		return nil
	}
}

func (r *resumingBody) of() string {
	if r.end < 0 {
		return ""
	}
	return " of " + strconv.FormatInt(r.end, 10)
}

func (r *resumingBody) Close() error {
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	return r.body.Close()
}

// rangeStart reads the first byte's offset from a Content-Range such as
// "bytes 100-199/1000".
func rangeStart(contentRange string) (int64, bool) {
	s, ok := strings.CutPrefix(contentRange, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func (b *Bucket) readResumes() int {
	switch {
	case b.opts.ReadResumes < 0:
		return 0
	case b.opts.ReadResumes == 0:
		return DefaultReadResumes
	}
	return b.opts.ReadResumes
}

func (b *Bucket) resumeBackoff() time.Duration {
	if b.opts.ResumeBackoff > 0 {
		return b.opts.ResumeBackoff
	}
	return DefaultResumeBackoff
}
