package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// Two migrations of one VM write two files: cancelling one (which deletes its copy)
// cannot delete the other's.
func TestEachMigrationOfAVMHasItsOwnDestination(t *testing.T) {
	vm := planning.VM{ID: "vm-0100", Site: "ams1", Sources: []string{"/disks/"}, DiskURI: "/disks/vm-0100.img", DiskBytes: 1 << 20, SLATier: "gold",
		MaxTransfer: time.Hour, MaxDowntime: time.Minute}
	a, err := NewMigrationInput("default", MigrationRequest{ID: "m-1", VMID: vm.ID}, vm)
	require.NoError(t, err)
	b, err := NewMigrationInput("default", MigrationRequest{ID: "m-2", VMID: vm.ID}, vm)
	require.NoError(t, err)
	require.Equal(t, "vm-0100/m-1.img", a.Destination)
	require.Equal(t, "vm-0100/m-2.img", b.Destination)
}

// A migration reads only under its site's sources: a source outside is refused naming
// the field it came from, and a site that declares none refuses every migration.
func TestCheckSource(t *testing.T) {
	vm := planning.VM{ID: "vm-0100", Site: "ams1", Sources: []string{"/disks/", "https://nas.example/ams1/"}, DiskURI: "/disks/vm-0100.img"}
	for _, ok := range []MigrationRequest{{}, {Source: "/disks/other.img"}, {Source: "https://nas.example/ams1/vm-0100.img"}} {
		require.NoError(t, CheckSource(ok, vm), ok.Source)
	}
	field := func(err error) string {
		var fe *validation.Error
		require.ErrorAs(t, err, &fe)
		return fe.Field
	}
	for _, bad := range []string{"/etc/passwd", "/disks/../etc/passwd", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/",
		"https://nas.example/fra1/vm-0100.img"} {
		err := CheckSource(MigrationRequest{Source: bad}, vm)
		require.Equal(t, "source", field(err), bad)
		require.ErrorContains(t, err, "not under the allowed sources (/disks/, https://nas.example/ams1/)")
	}
	outside := vm
	outside.DiskURI = "/srv/elsewhere/vm-0100.img"
	err := CheckSource(MigrationRequest{}, outside)
	require.Equal(t, "vm_id", field(err), "the inventory's disk_uri is the VM's")
	require.ErrorContains(t, err, "add its folder to site ams1's sources")
	none := vm
	none.Sources = nil
	require.ErrorContains(t, CheckSource(MigrationRequest{}, none), "site ams1 allows no sources")
	noDisk := vm
	noDisk.DiskURI = ""
	require.ErrorContains(t, CheckSource(MigrationRequest{}, noDisk), "no disk_uri")
}

// Who and why are required everywhere; their bounds only where a request is new (the
// API), never on what a history may already hold.
func TestCheckWhoWhyIsLenientOnlyAboutBounds(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		require.ErrorContains(t, CheckWhoWhy(" ", "why", bounded), "who: is required")
		require.ErrorContains(t, CheckWhoWhy("ann", "", bounded), "why: is required")
		require.NoError(t, CheckWhoWhy("ann", "wave at 9", bounded))
	}
	long := strings.Repeat("a", validation.MaxNameLength+1)
	require.NoError(t, CheckWhoWhy(long, "why", false), "a history's who is not bounded on replay")
	require.ErrorContains(t, CheckWhoWhy(long, "why", true), "who:")
	require.ErrorContains(t, CheckWhoWhy("ann", "line\x00", true), "why:")
}
