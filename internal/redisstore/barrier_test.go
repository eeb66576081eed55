package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"sluice/internal/testenv"
)

func newBarrier(t *testing.T) (*Barrier, redis.UniversalClient) {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return NewBarrier(rdb, time.Hour), rdb
}

func TestCompletesOnceWithDuplicatesAndRetries(t *testing.T) {
	t.Parallel()
	b, _ := newBarrier(t)
	ctx := context.Background()
	// Shard 1 is delivered twice, shard 2 retried after it had arrived.
	arrivals := []string{"0", "1", "1", "2", "2"}
	var firsts, completes int
	for i, m := range arrivals {
		a, err := b.Arrive(ctx, "run/step/map", m, 3)
		if err != nil {
			t.Fatal(err)
		}
		if a.First {
			firsts++
			if i != 3 {
				t.Errorf("first completion at arrival %d, want 3 (the last distinct shard)", i)
			}
		}
		if a.Complete {
			completes++
		}
	}
	if firsts != 1 || completes != 2 {
		t.Fatalf("firsts %d completes %d, want 1 and 2", firsts, completes)
	}
	if n, _ := b.Arrived(ctx, "run/step/map"); n != 3 {
		t.Fatalf("arrived %d, want 3", n)
	}
}

func TestConcurrentArrivalsCompleteExactlyOnce(t *testing.T) {
	t.Parallel()
	b, _ := newBarrier(t)
	ctx := context.Background()
	const shards, copies = 50, 3
	var mu sync.Mutex
	var firsts []string
	var wg sync.WaitGroup
	for c := 0; c < copies; c++ {
		for s := 0; s < shards; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := b.Arrive(ctx, "concurrent", fmt.Sprint(s), shards)
				if err != nil {
					t.Error(err)
					return
				}
				if a.First {
					mu.Lock()
					firsts = append(firsts, fmt.Sprint(s))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(firsts) != 1 {
		t.Fatalf("%d arrivals completed the barrier (%v), want exactly 1", len(firsts), firsts)
	}
}

func TestKeysExpire(t *testing.T) {
	t.Parallel()
	b, rdb := newBarrier(t)
	ctx := context.Background()
	if _, err := b.Arrive(ctx, "ttl", "0", 1); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ttl", "ttl:complete"} {
		ttl, err := rdb.TTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Fatalf("%s ttl %v err %v, want within an hour", k, ttl, err)
		}
	}
	if _, err := b.Arrive(ctx, "bad", "0", 0); err == nil {
		t.Fatal("total 0 accepted")
	}
}
