package fleetsim

import (
	"testing"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/sim"
)

func TestTheDefaultBootIsTheSimulators(t *testing.T) {
	if got, want := activities.DefaultProvisionDelay, sim.DefaultConfig().ProvisionDelay; got != want {
		t.Fatalf("activities.DefaultProvisionDelay is %s, the simulator's default %s", got, want)
	}
}
