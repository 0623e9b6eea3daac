package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/store/storetest"
)

func TestAVMIsClaimedByOneMigrationAtATime(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	holder, since, err := s.ClaimVM(ctx, "vm-1", "m-1")
	require.NoError(t, err)
	require.Equal(t, "m-1", holder)
	require.WithinDuration(t, time.Now(), since, time.Minute)
	// The same migration again (a retry) holds it still; another finds the holder.
	holder, _, err = s.ClaimVM(ctx, "vm-1", "m-1")
	require.NoError(t, err)
	require.Equal(t, "m-1", holder)
	holder, _, err = s.ClaimVM(ctx, "vm-1", "m-2")
	require.NoError(t, err)
	require.Equal(t, "m-1", holder)
	// Once m-1 is over, one of the others takes the claim, and only one.
	took, err := s.TakeVM(ctx, "vm-1", "m-1", "m-2")
	require.NoError(t, err)
	require.True(t, took)
	took, err = s.TakeVM(ctx, "vm-1", "m-1", "m-3")
	require.NoError(t, err)
	require.False(t, took, "m-2 took it first")
	holder, _, err = s.ClaimVM(ctx, "vm-1", "m-3")
	require.NoError(t, err)
	require.Equal(t, "m-2", holder)
	// Other VMs are free.
	holder, _, err = s.ClaimVM(ctx, "vm-2", "m-3")
	require.NoError(t, err)
	require.Equal(t, "m-3", holder)
}
