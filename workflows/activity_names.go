package workflows

import "reflect"

// The activities the workflows call, by the names the worker registers them under:
// each is its method's name on activities.Fleet, Connector, Events or Retention. The
// workflows call them by name, so that they, and the web server that starts them, do
// not link the activities and what those run (TestActivityNamesAreRegistered holds
// each name to a registered activity).
var (
	fleetActivities = activityNames[struct {
		Collect, Plan, Provision, Decommission, ResizeConnector, SyncConnectors, RecordConnectorMetrics, RecordOverride, LookupVM,
		RecordOutcome, RecordBreach, ForecastBatch, Simulate, Import, WavePage, WaveBatches, RecordWaveReport string
	}]()
	connectorActivities = activityNames[struct{ Prepare, Transfer, Discard, Cutover, ApplySize string }]()
	eventActivities     = activityNames[struct{ RecordEvents, RunningFleets, RecordPlanChanges string }]()
	retentionActivities = activityNames[struct{ ApplyRetention string }]()
)

// activityNames returns a T whose string fields each hold their own name.
func activityNames[T any]() T {
	var names T
	v := reflect.ValueOf(&names).Elem()
	for i := range v.NumField() {
		v.Field(i).SetString(v.Type().Field(i).Name)
	}
	return names
}
