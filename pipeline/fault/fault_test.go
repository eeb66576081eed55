package fault

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestPermanentKeepsTheCause(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("open bucket: %w", Permanent(fmt.Errorf("stat: %w", fs.ErrNotExist)))
	if !IsPermanent(err) {
		t.Error("wrapped permanent error not permanent")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("cause lost")
	}
	if err.Error() != "open bucket: stat: file does not exist" {
		t.Errorf("message %q", err)
	}
	if IsPermanent(fs.ErrNotExist) || Permanent(nil) != nil {
		t.Error("plain errors are not permanent")
	}
}
