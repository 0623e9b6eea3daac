package workflows

// The change IDs of workflow.GetVersion, every one in this file, so that what a
// worker must still replay is seen in one place. docs/versioning.md says how a
// version is added, and when and how it is retired (with the query that shows
// whether any open run can still take its old branch).

// plannedStoreVersion marks the runs that keep the pool's planned migrations in the
// store and plan a tick in one activity (fleetActivities.Plan), so that neither the planned work
// nor the demand curve passes through the history. A run decides once, as it starts.
const plannedStoreVersion = "planned-in-store"

// assignTogetherVersion guards assign's signals going out together: histories from
// before sent each after the one before had been delivered.
const assignTogetherVersion = "assign-signals-together"

// localLookupVersion guards the submission's VM lookup as a local activity: histories
// from before looked it up with a regular activity.
const localLookupVersion = "submit-lookup-local"

// submitChecksSourceVersion marks runs whose submit-migration update checks the
// migration's source against its site's sources, as POST /migrations does.
const submitChecksSourceVersion = "submit-checks-source"

// eventsVersion guards the re-plan on SignalEvents: a history that received the
// signal before fleets acted on it replays without the re-plan.
const eventsVersion = "replan-on-events"

// waitContinueVersion marks runs that continue as new while they wait.
const waitContinueVersion = "wait-continue-as-new"

// siteSourcesTransferVersion and siteSourcesCutoverVersion mark runs started before
// migrations carried their site's sources that look the list up before their next
// transfer or cutover; one ID each, since a run may have copied before the change and
// cut over after it.
const (
	siteSourcesTransferVersion = "site-sources-transfer"
	siteSourcesCutoverVersion  = "site-sources-cutover"
)

// approvalPerTryVersion marks runs in which an approval sent during a cutover try is
// ignored; runs from before it keep it for the next try.
const approvalPerTryVersion = "approval-per-try"
