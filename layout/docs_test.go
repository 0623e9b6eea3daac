package layout

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pmo-dev/pmo/config"
)

// docs/configuration.md names every setting the processes read, so that the reference
// cannot fall behind the code.
func TestTheConfigurationReferenceNamesEverySetting(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if name := f.Tag.Get("env"); name != "" {
				if !strings.Contains(string(doc), "`"+name+"`") {
					t.Errorf("docs/configuration.md does not name %s (config.%s.%s)", name, typ.Name(), f.Name)
				}
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
}
