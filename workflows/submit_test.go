package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
)

// Two migrations of one VM write two files: cancelling one (which deletes its copy)
// cannot delete the other's.
func TestEachMigrationOfAVMHasItsOwnDestination(t *testing.T) {
	vm := planning.VM{ID: "vm-0100", Site: "ams1", DiskURI: "/disks/vm-0100.img", DiskBytes: 1 << 20, SLATier: "gold",
		MaxTransfer: time.Hour, MaxDowntime: time.Minute}
	a, err := NewMigrationInput("default", MigrationRequest{ID: "m-1", VMID: vm.ID}, vm)
	require.NoError(t, err)
	b, err := NewMigrationInput("default", MigrationRequest{ID: "m-2", VMID: vm.ID}, vm)
	require.NoError(t, err)
	require.Equal(t, "vm-0100/m-1.img", a.Destination)
	require.Equal(t, "vm-0100/m-2.img", b.Destination)
}
