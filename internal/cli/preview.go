package cli

import (
	"context"
	"io"
)

func preview(ctx context.Context, args []string, stdout io.Writer) error { return nil }
