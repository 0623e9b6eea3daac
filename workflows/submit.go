package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sources"
	"github.com/pmo-dev/pmo/validation"
)

// NewMigrationInput is the migration a request asks for, filled in from the VM's
// inventory row. A request may tighten its tier's SLA bounds, never loosen them; a
// bad one is a *validation.Error naming the field.
// The source is checked apart (CheckSource), before anything is started.
func NewMigrationInput(pool string, r MigrationRequest, vm planning.VM) (MigrationInput, error) {
	_, source := migrationSource(r, vm)
	downtime, err := tightened(r.Downtime, "max_downtime", vm.MaxDowntime, vm.SLATier)
	if err != nil {
		return MigrationInput{}, err
	}
	maxTransfer, err := tightened(r.Transfer, "max_transfer", vm.MaxTransfer, vm.SLATier)
	if err != nil {
		return MigrationInput{}, err
	}
	return MigrationInput{
		ID: r.ID, Pool: pool, VMID: vm.ID, Site: vm.Site, Source: source, Sources: vm.Sources, Destination: Destination(vm.ID, r.ID),
		Bytes: vm.DiskBytes, SLATier: vm.SLATier, MaxTransfer: maxTransfer, MaxDowntime: downtime, Priority: r.Priority,
		RequireApproval: r.RequireApproval, CutoverAfter: r.CutoverAfter,
	}, nil
}

// CheckSource checks where a requested migration would read the VM's disk: the
// request's source, or else the inventory's disk_uri, must be under the site's sources
// (package sources). A bad one is a *validation.Error naming the list but never saying
// whether anything outside it exists.
func CheckSource(r MigrationRequest, vm planning.VM) error {
	field, source := migrationSource(r, vm)
	if source == "" {
		return validation.Field(field, "VM %s has no disk_uri in the inventory; give a source", vm.ID)
	}
	allowed, err := sources.Parse(vm.Sources)
	if err != nil {
		return validation.Field(field, "site %s's sources are not usable (%v); import the site again with its sources", vm.Site, err)
	}
	if allowed.Empty() {
		return validation.Field(field, "site %s allows no sources: import the site with a sources column naming where its disks may be read", vm.Site)
	}
	if err := allowed.Check(source); err != nil {
		if field == "vm_id" {
			return validation.Field(field, "VM %s's disk_uri: %v; add its folder to site %s's sources", vm.ID, err, vm.Site)
		}
		return validation.Field(field, "%v", err)
	}
	return nil
}

// migrationSource is where a requested migration reads the VM's disk, and the
// request's field that says so: the request's source, or else the inventory's
// disk_uri (the VM's, named by vm_id).
func migrationSource(r MigrationRequest, vm planning.VM) (field, source string) {
	if r.Source != "" {
		return "source", r.Source
	}
	return "vm_id", vm.DiskURI
}

// Destination is where a migration writes its copy, under the connectors' target
// folder: a folder per VM and a file per migration, so that one migration of a VM
// never writes, or on cancel deletes, another's copy.
func Destination(vmID, migrationID string) string { return vmID + "/" + migrationID + ".img" }

// tightened is a request's SLA bound, or the tier's where the request sets none; a
// request may tighten its tier, never loosen it.
func tightened(parse func() (time.Duration, error), field string, tier time.Duration, tierName string) (time.Duration, error) {
	d, err := parse()
	if err != nil {
		return 0, err
	}
	if d == 0 {
		return tier, nil
	}
	if d > tier {
		return 0, validation.Field(field, "%s is longer than the %s tier's %s; it can only be tightened", d, tierName, tier)
	}
	return d, nil
}

// MemoRequest is the memo key holding a digest of the request that started a
// migration, so that a retry of that request can be told from another request made
// under the same migration ID.
const MemoRequest = "request"

// MigrationStartOptions are the options a migration is started with. Its workflow ID
// is the migration's, and Temporal refuses a second start under it, running or
// closed: a retried submission starts nothing twice. request is the digest kept under
// MemoRequest.
func MigrationStartOptions(in MigrationInput, request string) client.StartWorkflowOptions {
	memo := migrationMemo(in)
	memo[MemoRequest] = request
	return client.StartWorkflowOptions{
		ID: MigrationWorkflowID(in.ID), TaskQueue: TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// The SDK's client would otherwise hand back the running migration as if it
		// had just started it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    migrationSearch(in),
		Memo:                                     memo,
		StaticSummary:                            migrationSummary(in),
	}
}

// migrationSearch are a new migration's search attributes: the Web UI and
// GET /migrations filter on them.
func migrationSearch(in MigrationInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(SearchPool.ValueSet(in.Pool), SearchSite.ValueSet(in.Site),
		SearchSLATier.ValueSet(in.SLATier), SearchPhase.ValueSet(PhaseWaiting))
}

// migrationMemo is what the Web UI shows of a migration beside its search attributes.
func migrationMemo(in MigrationInput) map[string]any {
	return map[string]any{"vm": in.VMID, "bytes": in.Bytes, "source": in.Source, "destination": in.Destination}
}

// migrationSummary is the migration's one line in the Web UI.
func migrationSummary(in MigrationInput) string {
	return fmt.Sprintf("Migrate VM %s (%s) at %s, %s SLA: %s to copy", in.VMID, mib(in.Bytes), in.Site, in.SLATier, in.MaxTransfer)
}
