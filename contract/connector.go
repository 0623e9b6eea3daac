package contract

// PrepareInput names a migration about to be transferred and its size.
type PrepareInput struct {
	MigrationID string
	Bytes       int64
}

// PrepareResult says which connector is ready and how much room it has left.
type PrepareResult struct {
	ConnectorID      string
	FreeStorageBytes int64
}

// TransferInput says what to copy where. Source is a local path, a file:// URI or an
// http(s) URL; Destination is a file name relative to the connector's target directory.
type TransferInput struct {
	MigrationID string
	// Site is the migration's site and Sources its list of where disks may be read
	// (sources.Entry), from PMO's database when the migration started: a source
	// outside it is refused before anything is opened.
	Site          string
	Sources       []string
	Source        string
	Destination   string
	ExpectedBytes int64
	// SHA256 is the source's checksum when known (hex). Without it a resumed copy
	// reads the source once more to verify.
	SHA256 string
	// Resume continues from the partial copy on disk, as a new attempt after a pause
	// does; the copy is verified against the source at the end either way.
	Resume bool
	// Live says the source is a running VM's disk that changes during the copy: the
	// bulk copy is not checked against it, the cutover (Cutover) makes it exact.
	Live bool
}

// TransferResult is a finished copy's summary.
type TransferResult struct {
	Bytes          int64
	SHA256         string
	Seconds        float64
	AvgBytesPerSec float64
}

// DiscardInput names the copy of a cancelled migration.
type DiscardInput struct {
	MigrationID string
	Destination string
	// Complete also removes a finished bulk copy, not just a partial one.
	Complete bool
}

// CutoverInput names the migration whose copy the final delta sync brings up to date.
type CutoverInput struct {
	MigrationID string
	// Site and Sources are as in TransferInput.
	Site        string
	Sources     []string
	Source      string
	Destination string
}

// CutoverResult says what the delta sync copied and the copy's checksum.
type CutoverResult struct {
	Blocks        int
	ChangedBlocks int
	BytesCopied   int64
	SHA256        string
	Seconds       float64
}

// ApplySizeInput is a connector's new allocation.
type ApplySizeInput struct {
	BandwidthBytesSec float64
}

// ApplySizeResult is the bandwidth in force after the change.
type ApplySizeResult struct {
	BandwidthBytesSec float64
}
