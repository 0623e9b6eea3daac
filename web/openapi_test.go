package main

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/store/storetest"
)

// /openapi.yaml describes every route the server has, as the code has it: a valid
// OpenAPI 3 document with each route's role, parameters and the schemas of the Go
// types its handler reads and answers.
func TestTheOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	st := storetest.New(t)
	e := echo.New()
	(&Server{Pool: "default", Store: st, Logger: slog.New(slog.DiscardHandler), RateLimit: unlimited}).Routes(e)
	require.Equal(t, http.StatusUnauthorized, serve(e, "", "", "GET", "/openapi.yaml", "").Code)
	_, key := newKey(t, st, apikey.Viewer)
	rec := serve(e, "Bearer "+key, "", "GET", "/openapi.yaml", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))

	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "a valid OpenAPI 3 document")

	for _, r := range e.Routes() {
		path, _ := openAPIPath(r.Path)
		item := doc.Paths.Find(path)
		require.NotNil(t, item, "%s %s is in the document", r.Method, r.Path)
		op := item.GetOperation(r.Method)
		require.NotNil(t, op, "%s %s is in the document", r.Method, r.Path)
		role := routeRoles[routeKey(r.Method, r.Path)]
		require.Equal(t, string(role), op.Extensions["x-pmo-role"], "%s %s", r.Method, r.Path)
		require.Equal(t, role != anyone, op.Security != nil, "%s %s needs a key exactly when its role is not anyone", r.Method, r.Path)
		require.NotNil(t, op.Responses.Default(), "%s %s has its problem+json errors", r.Method, r.Path)
	}
	require.Equal(t, len(e.Routes()), len(operations), "one entry for each route, and no more")

	// The schemas are the handlers' own types.
	submit := doc.Paths.Find("/migrations").Post
	body := submit.RequestBody.Value.Content.Get("application/json").Schema.Value
	require.Contains(t, body.Properties, "vm_id")
	require.Contains(t, body.Properties, "require_approval")
	answer := submit.Responses.Status(201).Value.Content.Get("application/json").Schema.Value
	require.Contains(t, answer.Properties["migration"].Value.Properties, "run_id")
	list := doc.Paths.Find("/migrations").Get
	require.NotNil(t, list.Parameters.GetByInAndName("query", "state"))
	require.NotNil(t, doc.Paths.Find("/migrations/{id}/cancel").Post.Parameters.GetByInAndName("path", "id"))
	require.Contains(t, doc.Paths.Find("/inventory").Put.RequestBody.Value.Content, "text/csv")
}

// A route the document does not describe stops the server from starting.
func TestARouteWithoutADescriptionStopsTheServer(t *testing.T) {
	e := echo.New()
	e.GET("/undescribed", func(echo.Context) error { return nil })
	require.PanicsWithValue(t, "web: route GET /undescribed has no entry in operations (web/openapi.go)", func() { checkOperations(e) })
}

// What the API reads and answers is made of the API's own types and the contract's
// (workflows, planning, imports, store), never of a type inside the simulator, the
// activities, the forecasting models, the copy or the provisioner, so that a change
// in one of them cannot change the API unseen.
func TestTheAPIIsMadeOfItsOwnTypes(t *testing.T) {
	inside := []string{"/activities", "/sim", "/forecast", "/transfer", "/provisioner"}
	seen := map[reflect.Type]bool{}
	var walk func(route string, typ reflect.Type, path string)
	walk = func(route string, typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if seen[typ] {
			return
		}
		seen[typ] = true
		for _, p := range inside {
			if strings.HasSuffix(typ.PkgPath(), "/pmo"+p) {
				t.Errorf("%s: %s is %s, a type inside %s", route, path, typ, typ.PkgPath())
			}
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for f := range typ.Fields() {
			if f.IsExported() {
				walk(route, f.Type, path+"."+f.Name)
			}
		}
	}
	for route, op := range operations {
		for _, v := range []any{op.body, op.answer} {
			if v != nil {
				walk(route, reflect.TypeOf(v), reflect.TypeOf(v).String())
			}
		}
	}
}

// POST /simulate's results carry every figure of the simulator's result under the same
// names, through the contract's copy of it: a field the simulator gains or renames
// fails here, to be carried to the workflow and the API (or left out) on purpose.
func TestSimulatedPolicyCarriesTheSimulatorsFigures(t *testing.T) {
	names := func(typ reflect.Type) []string {
		var out []string
		for _, f := range reflect.VisibleFields(typ) {
			if tag := strings.Split(f.Tag.Get("json"), ",")[0]; !f.Anonymous && tag != "-" && tag != "" {
				out = append(out, tag)
			}
		}
		return out
	}
	// A run's ratio to the baseline is the simulation's, not the simulator's.
	require.Equal(t, append(names(reflect.TypeFor[sim.Result]()), "vs_baseline"), names(reflect.TypeFor[contract.PolicyRun]()))
	require.Equal(t, names(reflect.TypeFor[contract.PolicyRun]()), names(reflect.TypeFor[SimulatedPolicy]()))
}
