package storagetest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sluice/pipeline/storage"
)

// ConditionalTest checks the storage.ConditionalPutter contract of b (cp is
// b itself, or a second handle on the same storage, such as another
// process's client): create-only-if-absent, replace-only-if-unchanged, and
// that concurrent read-modify-write loops lose no increment.
func ConditionalTest(t *testing.T, b storage.Bucket, cp storage.ConditionalPutter) {
	ctx := t.Context()
	const key = "conditional/doc"
	e1, err := cp.PutIfMatch(ctx, key, strings.NewReader("one"), "")
	if err != nil {
		t.Fatalf("create if absent: %v", err)
	}
	if info, err := b.Stat(ctx, key); err != nil || info.ETag != e1 {
		t.Fatalf("Stat after PutIfMatch: %+v, %v; want ETag %s", info, err, e1)
	}
	if _, err := cp.PutIfMatch(ctx, key, strings.NewReader("two"), ""); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("create over an existing object: %v, want ErrPreconditionFailed", err)
	}
	if _, err := cp.PutIfMatch(ctx, key, strings.NewReader("two"), e1+"x"); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("put with a wrong ETag: %v, want ErrPreconditionFailed", err)
	}
	if _, err := cp.PutIfMatch(ctx, "conditional/absent", strings.NewReader("x"), e1); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("put-if-match of a missing key: %v, want ErrPreconditionFailed", err)
	}
	e2, err := cp.PutIfMatch(ctx, key, strings.NewReader("two"), e1)
	if err != nil || e2 == e1 {
		t.Fatalf("put with the right ETag: %q, %v", e2, err)
	}
	if got := readAll(t, b, key); got != "two" {
		t.Fatalf("content %q, want two", got)
	}

	// Concurrent increments of one counter: every one must survive.
	const counter, writers, each = "conditional/counter", 4, 8
	if _, err := cp.PutIfMatch(ctx, counter, strings.NewReader("0"), ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if err := increment(t, b, cp, counter); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := readAll(t, b, counter), fmt.Sprint(writers*each); got != want {
		t.Errorf("counter %s after %s concurrent increments: updates were lost", got, want)
	}
	for _, k := range []string{key, counter} {
		if err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}

// increment adds one to the number in key by read-modify-write, starting
// over when another writer changed it in between. It may be called from any
// goroutine.
func increment(t *testing.T, b storage.Bucket, cp storage.ConditionalPutter, key string) error {
	ctx := t.Context()
	for range 1000 {
		info, err := b.Stat(ctx, key)
		if err != nil {
			return err
		}
		s, err := readString(t, b, key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		_, err = cp.PutIfMatch(ctx, key, strings.NewReader(strconv.Itoa(n+1)), info.ETag)
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return err
		}
	}
	return errors.New("no progress after 1000 attempts")
}

func readAll(t *testing.T, b storage.Bucket, key string) string {
	t.Helper()
	s, err := readString(t, b, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readString may be called from any goroutine.
func readString(t *testing.T, b storage.Bucket, key string) (string, error) {
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return string(data), err
}
