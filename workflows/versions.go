package workflows

// The change IDs of workflow.GetVersion, every one in this file, so that what a
// worker must still replay is seen in one place. docs/versioning.md says how a
// version is added, and when and how it is retired (with the query that shows
// whether any open run can still take its old branch).

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

// externalMetricsVersion marks runs that learn external connectors' metrics from
// Collect, which reads what the web server stored, and judge their health after it;
// runs from before it judge before Collect, and learn them from an update per post.
const externalMetricsVersion = "external-metrics-collected"

// siteMoveVersion marks runs that hand their connectors at a site that moved to
// another pool over to that pool's fleet.
const siteMoveVersion = "site-move-handover"

// waveBatchesVersion marks waves run as a tree: batches of migrations under the wave,
// with the operator's actions; runs from before it started every migration from the
// wave itself.
const waveBatchesVersion = "wave-batches"

// waveLoadVersion marks waves whose batches report what they still hold once they
// have started all their migrations, counting those that wait for an operator apart,
// so that the next batch starts as the tails shrink; runs from before it start the
// next batch only when one ends.
const waveLoadVersion = "wave-batch-load"

// connectorLimitsVersion marks runs whose resize has the connector's driver change its
// CPU and memory limits before the connector takes its new bandwidth; runs from before
// it changed the bandwidth alone.
const connectorLimitsVersion = "connector-limits"
