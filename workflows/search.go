package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that make migrations findable in the Temporal Web UI and in
// GET /migrations: filter by pool, site, SLA tier, phase or connector.
var (
	SearchPool      = temporal.NewSearchAttributeKeyKeyword("PmoPool")
	SearchSite      = temporal.NewSearchAttributeKeyKeyword("PmoSite")
	SearchSLATier   = temporal.NewSearchAttributeKeyKeyword("PmoSlaTier")
	SearchPhase     = temporal.NewSearchAttributeKeyKeyword("PmoPhase")
	SearchConnector = temporal.NewSearchAttributeKeyKeyword("PmoConnector")
)

// SearchAttributes are the custom search attributes the workflows set, with their
// types, for the worker to register on the namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{SearchPool, SearchSite, SearchSLATier, SearchPhase, SearchConnector} {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}
