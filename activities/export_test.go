package activities

// FleetFixture and Now let the external tests, which may import what imports this
// package, use the real database fixture.
var (
	FleetFixture = fleetFixture
	Now          = now
)
