package workflows

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/activities"
)

// Every activity a workflow calls by name is a method of the struct the worker
// registers: a misspelt or renamed one fails here, not in a workflow at run time.
func TestActivityNamesAreRegistered(t *testing.T) {
	for _, c := range []struct {
		names any
		impl  reflect.Type
	}{
		{fleetActivities, reflect.TypeFor[*activities.Fleet]()},
		{connectorActivities, reflect.TypeFor[*activities.Connector]()},
		{eventActivities, reflect.TypeFor[*activities.Events]()},
		{retentionActivities, reflect.TypeFor[*activities.Retention]()},
	} {
		v := reflect.ValueOf(c.names)
		require.Positive(t, v.NumField())
		for i := range v.NumField() {
			name := v.Field(i).String()
			require.Equal(t, v.Type().Field(i).Name, name)
			_, ok := c.impl.MethodByName(name)
			require.True(t, ok, "%s has no activity %s", c.impl, name)
		}
	}
}
