package redisstore

import (
	"testing"

	"sluice/internal/testenv"
)

// One redis-server for the package; each test gets a database of its own.
func TestMain(m *testing.M) { testenv.Main(m) }
