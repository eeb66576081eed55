package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"sluice/internal/testenv"
)

// The queue lists an autoscaler reads are the ones asynq keeps: a task
// waiting is in the pending list, a task running in the active one.
func TestAsynqQueueKeys(t *testing.T) {
	t.Parallel()
	url := testenv.RedisDB(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	ropt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	client := asynq.NewClient(opt)
	defer client.Close()
	ctx := context.Background()
	const queue = "transform"
	if _, err := client.Enqueue(asynq.NewTask("test:block", nil), asynq.Queue(queue)); err != nil {
		t.Fatal(err)
	}
	lengths := func() (pending, active int64) {
		t.Helper()
		p, err := rdb.LLen(ctx, AsynqPendingKey(queue)).Result()
		if err != nil {
			t.Fatal(err)
		}
		a, err := rdb.LLen(ctx, AsynqActiveKey(queue)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return p, a
	}
	if p, a := lengths(); p != 1 || a != 0 {
		t.Fatalf("enqueued: pending %d, active %d; want 1, 0", p, a)
	}
	running, release := make(chan struct{}), make(chan struct{})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1}, TaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.ErrorLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		close(running)
		<-release
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	defer close(release)
	select {
	case <-running:
	case <-time.After(30 * time.Second):
		t.Fatal("the task never ran")
	}
	if p, a := lengths(); p != 0 || a != 1 {
		t.Fatalf("running: pending %d, active %d; want 0, 1", p, a)
	}
}
