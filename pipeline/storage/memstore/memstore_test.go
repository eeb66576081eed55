package memstore_test

import (
	"testing"

	"sluice/pipeline/storage/memstore"
	"sluice/pipeline/storage/storagetest"
)

func TestAcceptance(t *testing.T) {
	t.Parallel()
	storagetest.AcceptanceTest(t, memstore.New())
}
