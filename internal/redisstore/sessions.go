package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions are the console's sign-in sessions: a random id per sign-in,
// kept in Redis (by its SHA-256, so a copy of Redis holds no cookie) with
// the session's lifetime, so that every scheduler replica accepts it and
// signing out ends it everywhere.
type Sessions struct {
	rdb redis.UniversalClient
}

// NewSessions returns the session store over rdb.
func NewSessions(rdb redis.UniversalClient) *Sessions { return &Sessions{rdb: rdb} }

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return keyPrefix + "session:" + hex.EncodeToString(h[:])
}

// Create starts a session of ttl bound to binding (what it stands for:
// the guard binds it to its token, so a new token ends old sessions) and
// returns its id.
func (s *Sessions) Create(ctx context.Context, binding string, ttl time.Duration) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := s.rdb.Set(ctx, sessionKey(id), binding, ttl).Err(); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// Valid tells whether id is a live session bound to binding.
func (s *Sessions) Valid(ctx context.Context, id, binding string) (bool, error) {
	if id == "" {
		return false, nil
	}
	v, err := s.rdb.Get(ctx, sessionKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read session: %w", err)
	}
	return subtle.ConstantTimeCompare([]byte(v), []byte(binding)) == 1, nil
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, sessionKey(id)).Err(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
