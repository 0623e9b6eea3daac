//go:build tools

// Package seaweedfs pins SeaweedFS, whose weed command is the S3-compatible object
// store the tests and the compose stack run as the cloud's target. SeaweedFS's go.mod
// has a replace directive, so `go install` refuses it; this module requires it and
// repeats that replace, and scripts/lib.sh builds weed from here.
package seaweedfs

import _ "github.com/seaweedfs/seaweedfs/weed"
