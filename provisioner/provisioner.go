// Package provisioner starts and stops connectors. The interface is small so that other
// drivers (Kubernetes pods, cloud VMs) can sit beside the process driver.
package provisioner

import (
	"context"

	"github.com/pmo-dev/pmo/planning"
)

// Spec says which connector to run and with what allocation.
type Spec struct {
	ID        string
	Pool      string
	Site      string
	TaskQueue string
	Size      planning.Size
	// UplinkBytesSec is the site's uplink, which a driver that puts the site behind a
	// link of its own shapes the link to.
	UplinkBytesSec float64
}

// Status is what a driver knows about a connector it started.
type Status struct {
	// Running is true while the connector's process (or pod, or VM) is alive.
	Running bool
	// PID is the process ID for the process driver, 0 otherwise.
	PID int
}

// Provisioner starts and stops connectors. Every method is idempotent, because Temporal
// may retry the activity that calls it: starting a running connector and stopping a
// stopped one are no-ops.
type Provisioner interface {
	// Start brings the connector up. It returns once the process is started, not when
	// the connector polls; the connector records its own readiness.
	Start(ctx context.Context, spec Spec) (Status, error)
	// Stop shuts the connector down, gracefully first.
	Stop(ctx context.Context, id string) error
	// Status reports whether the connector is running.
	Status(ctx context.Context, id string) (Status, error)
	// Resize holds the running connector to a new size's CPU and memory in place,
	// without restarting it or its transfers; resizing one that does not run does
	// nothing.
	Resize(ctx context.Context, id string, size planning.Size) error
}
