// Package workflows holds the example workflow files, embedded so that the
// demo runs from any directory.
package workflows

import _ "embed"

// MobileUser is workflows/mobile-user.yaml.
//
//go:embed mobile-user.yaml
var MobileUser []byte
