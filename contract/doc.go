// Package contract is what the workflows and the activities exchange: each activity's
// input and result. The workflows call activities by name with these types and the
// activities take and answer them, so that neither side's internals reach the other,
// and the web server, which starts the workflows, links none of the activities, the
// simulator, the copy or the provisioner. It holds types only; changing a field's JSON
// changes what recorded histories hold (docs/versioning.md).
package contract
