package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"sluice/pipeline/storage"
)

var _ storage.Composer = (*Bucket)(nil)

const (
	// MaxCopyPartSize is the largest range one UploadPartCopy takes.
	MaxCopyPartSize = 5 << 30
	// maxParts is the most parts one multipart upload may have.
	maxParts = 10000
	// composeConcurrency bounds the part requests of one Compose in
	// flight. Uploaded parts hold at most about MinPartSize each in
	// memory.
	composeConcurrency = 8
)

// composePart is one part of a composed object: a range of one source
// copied on the server (UploadPartCopy), or pieces that are too small to
// be parts of their own, read and uploaded together (UploadPart).
type composePart struct {
	copy   *storage.Section
	upload []storage.Section
	size   int64
}

// planParts cuts sections into the parts of a multipart upload: every
// part but the last at least minPart bytes, as S3 requires. A range of
// at least minPart is copied on the server (in pieces of at most
// maxCopy); smaller ranges and literal bytes are gathered into uploaded
// parts, which borrow the head of the next large range when they would
// otherwise end short. The server moves all but a few MiB per small
// section.
func planParts(sections []storage.Section, minPart, maxCopy int64) []composePart {
	var parts []composePart
	var pending composePart
	flush := func() {
		if pending.size > 0 {
			parts = append(parts, pending)
			pending = composePart{}
		}
	}
	add := func(s storage.Section) {
		pending.upload = append(pending.upload, s)
		pending.size += s.Size()
		if pending.size >= minPart {
			flush()
		}
	}
	for _, s := range sections {
		if s.Size() == 0 {
			continue
		}
		if s.Key == "" {
			add(s)
			continue
		}
		off, n := s.Offset, s.Length
		if pending.size > 0 {
			take := min(n, minPart-pending.size)
			add(storage.Section{Key: s.Key, Offset: off, Length: take})
			off, n = off+take, n-take
		}
		if n == 0 {
			continue
		}
		if n < minPart {
			add(storage.Section{Key: s.Key, Offset: off, Length: n})
			continue
		}
		for n > 0 {
			take := n
			if take > maxCopy {
				// Leave at least minPart for the piece after this one.
				take = min(maxCopy, n-minPart)
			}
			parts = append(parts, composePart{copy: &storage.Section{Key: s.Key, Offset: off, Length: take}, size: take})
			off, n = off+take, n-take
		}
	}
	flush()
	return parts
}

// Compose builds key from sections with one multipart upload: ranges of
// at least MinPartSize are copied on the server (UploadPartCopy), the
// rest read and uploaded in parts of at least MinPartSize. An object with
// nothing to copy on the server is a plain Put of its bytes.
func (b *Bucket) Compose(ctx context.Context, key string, sections []storage.Section) error {
	parts := planParts(sections, MinPartSize, MaxCopyPartSize)
	if !slices.ContainsFunc(parts, func(p composePart) bool { return p.copy != nil }) {
		var buf bytes.Buffer
		if err := storage.WriteSections(ctx, b, &buf, sections); err != nil {
			return fmt.Errorf("compose %s: %w", key, err)
		}
		return b.Put(ctx, key, &buf)
	}
	if len(parts) > maxParts {
		return fmt.Errorf("compose %s: %d parts, more than S3's %d", key, len(parts), maxParts)
	}
	up, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: b.key(key)})
	if err != nil {
		return b.fail(err, "compose "+key)
	}
	done, err := b.composeParts(ctx, key, up.UploadId, parts)
	if err == nil {
		_, err = b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &b.bucket, Key: b.key(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		})
		if err != nil {
			err = b.fail(err, "compose "+key)
		}
	}
	if err != nil {
		// Parts of an upload that never completes are stored (and billed)
		// until aborted; abort even when ctx is done.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := b.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: b.key(key), UploadId: up.UploadId}); aerr != nil {
			b.opts.Log.Warn("could not abort a failed multipart upload; an AbortIncompleteMultipartUpload lifecycle rule removes its parts", "key", key, "err", aerr)
		}
		return err
	}
	return nil
}

// composeParts sends the parts of upload id, a few at a time.
func (b *Bucket) composeParts(ctx context.Context, key string, id *string, parts []composePart) ([]types.CompletedPart, error) {
	done := make([]types.CompletedPart, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(composeConcurrency)
	for i, p := range parts {
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			var etag *string
			if s := p.copy; s != nil {
				out, err := b.client.UploadPartCopy(gctx, &s3.UploadPartCopyInput{
					Bucket: &b.bucket, Key: b.key(key), UploadId: id, PartNumber: num,
					CopySource:      aws.String(b.bucket + "/" + url.PathEscape(b.prefix+s.Key)),
					CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", s.Offset, s.Offset+s.Length-1)),
				})
				if isNotFound(err) {
					return fmt.Errorf("compose %s: %s: %w", key, s.Key, storage.ErrNotExist)
				}
				if err != nil {
					return b.fail(err, "compose "+key+": copy part from "+s.Key)
				}
				if out.CopyPartResult != nil {
					etag = out.CopyPartResult.ETag
				}
			} else {
				buf := bytes.NewBuffer(make([]byte, 0, p.size))
				if err := storage.WriteSections(gctx, b, buf, p.upload); err != nil {
					return fmt.Errorf("compose %s: %w", key, err)
				}
				out, err := b.client.UploadPart(gctx, &s3.UploadPartInput{
					Bucket: &b.bucket, Key: b.key(key), UploadId: id, PartNumber: num,
					Body: bytes.NewReader(buf.Bytes()), ContentLength: aws.Int64(int64(buf.Len())),
				})
				if err != nil {
					return b.fail(err, "compose "+key+": upload part")
				}
				etag = out.ETag
			}
			if etag == nil {
				return fmt.Errorf("compose %s: part %d: %w", key, *num, errors.New("no ETag in the answer"))
			}
			done[i] = types.CompletedPart{ETag: etag, PartNumber: num}
			return nil
		})
	}
	return done, g.Wait()
}
