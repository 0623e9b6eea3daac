package main

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v4"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// The OpenAPI 3 document of the API is made from the code at start: each route's
// entry in operations names the Go types its handler decodes and answers with, and
// their schemas are generated from those types; the role comes from routeRoles. A
// route without an entry stops the server from starting, as one without a role does,
// so the document and the code cannot drift. It is served at /openapi.yaml.

// operation is one route as the document describes it.
type operation struct {
	summary string
	// query are the query parameters it reads.
	query []queryParam
	// body is a value of the JSON type the handler decodes, nil for none; media
	// overrides it for bodies that are not JSON (a file, a calendar).
	body  any
	media map[string]string
	// status and answer are the success status and a value of the JSON type
	// answered; answerMedia overrides it for answers that are not JSON.
	status      int
	answer      any
	answerMedia string
}

// queryParam is a query parameter: its name, type (string or integer) and meaning.
type queryParam struct{ name, typ, doc string }

// poolParam is what every route of a pool's fleet reads (Server.fleetPool).
var poolParam = queryParam{"pool", "string", "the connector pool (default: the server's PMO_POOL)"}

// fileMedia is an imported file: CSV or JSON rows (docs/import.md).
var fileMedia = map[string]string{"text/csv": "the file as CSV, a header row first", "application/json": "the rows as a JSON array of objects"}

// operations describes every route; the key is routeRoles'.
var operations = map[string]operation{
	"GET /healthz":      {summary: "The process is up.", status: 200, answer: HealthAnswer{}},
	"GET /readyz":       {summary: "The API serves every route: Temporal and PostgreSQL answer, and so does the pool's fleet (a worker runs it); 503 says what does not.", status: 200, answer: ReadyAnswer{}},
	"GET /":             {summary: "The dashboard's page.", status: 200, answerMedia: "text/html"},
	"GET /dashboard/*":  {summary: "The dashboard's script, styles and vendored chart library.", status: 200, answerMedia: "application/octet-stream"},
	"GET /openapi.yaml": {summary: "This document.", status: 200, answerMedia: "application/yaml"},
	"GET /metrics":      {summary: "Prometheus metrics of the web server (docs/operations.md).", status: 200, answerMedia: "text/plain"},
	"GET /me":           {summary: "The caller's API key: ID, name, role, and the pool it addresses.", status: 200, answer: Me{}},
	"POST /waves": {summary: "Start a planned wave (a POST /forecast request planned with plan: true): its migrations become the wave workflow's children, each at its earliest start.",
		body: waveBody{}, status: 202, answer: WaveView{}, query: []queryParam{poolParam}},
	"GET /waves/:id": {summary: "A wave's progress: its migrations started, running, succeeded, failed and refused, its ETA against its deadline, the operators' actions, its workflow in the Temporal Web UI, and its report once it has ended.",
		status: 200, answer: WaveView{}},
	"GET /waves": {summary: "The newest waves, newest first, each with its progress.", status: 200, answer: []WaveView{},
		query: []queryParam{{"limit", "integer", "how many, 1 to 500 (default 50)"}}},
	"GET /waves/:id/report": {summary: "The end-of-wave report: each planned migration's outcome (its last attempt), bytes, time against the plan, breaches, the connectors that served it and the operators' actions.",
		status: 200, answer: contract.WaveReport{}},
	"POST /waves/:id/pause":   {summary: "Pause a whole wave: its running migrations pause, keeping their partial copies, and no more start.", body: workflows.Control{}, status: 200, answer: WaveView{}},
	"POST /waves/:id/resume":  {summary: "Resume a paused wave: its migrations go on from their partial copies, and the rest start.", body: workflows.Control{}, status: 200, answer: WaveView{}},
	"POST /waves/:id/cancel":  {summary: "Cancel a whole wave: its running migrations are cancelled (their partial copies removed) and no more start.", body: workflows.Control{}, status: 200, answer: WaveView{}},
	"POST /waves/:id/approve": {summary: "Approve the cutover of every migration of a wave started with require_approval.", body: workflows.Control{}, status: 200, answer: WaveView{}},
	"POST /waves/:id/retry":   {summary: "Run a wave's failed migrations again, each under a new ID from its partial copy: after the current pass, or at once in a new run of a wave that has ended.", body: workflows.Control{}, status: 200, answer: WaveView{}},
	"GET /pools":              {summary: "Every pool that has sites, with its sites and its fleet workflow in the Temporal Web UI.", status: 200, answer: []PoolView{}},
	"GET /audit": {summary: "The newest mutating calls, newest first.", status: 200, answer: []store.AuditRecord{},
		query: []queryParam{{"limit", "integer", "how many, 1 to 1000 (default 100)"}}},
	"GET /sites/:site/timeline": {summary: "A site hour by hour: arrivals forecast against actual, connectors planned against running.", status: 200,
		answer: Timeline{}, query: []queryParam{{"hours", "integer", "hours back and ahead, 1 to 168 (default 48)"}}},

	"POST /forecast": {summary: "What a batch of migrations needs, and with plan=true its registration as known work; with what_if, the plan that would follow.",
		body: forecastBody{}, status: 200, answer: workflows.ForecastAnswer{}, query: []queryParam{poolParam}},
	"GET /connectors": {summary: "The connector fleet: state, site, allocated, used and free resources, migrations, and why each was started.",
		status: 200, answer: []ConnectorView{}, query: []queryParam{poolParam}},
	"POST /connectors": {summary: "Register an external connector (201; 200 when registered before with the same values).",
		body: workflows.RegisterConnectorRequest{}, status: 201, answer: RegisterAnswer{}, query: []queryParam{poolParam}},
	"POST /connectors/:id/deregister": {summary: "Take an external connector out of the pool once its migrations are done.",
		body: workflows.Control{}, status: 200, answer: ConnectorView{}, query: []queryParam{poolParam}},
	"POST /connectors/:id/metrics": {summary: "An external connector's metrics: one sample, or an array of up to 100.",
		body: planning.MetricSample{}, status: 200, answer: workflows.ConnectorMetricsResult{}},
	"GET /plan":   {summary: "The latest plan: targets per site, bottlenecks and reasons.", status: 200, answer: planning.Plan{}, query: []queryParam{poolParam}},
	"POST /scale": {summary: "Provision connectors at a site, resize one, or drain one.", body: workflows.ScaleRequest{}, status: 200, answer: ScaleAnswer{}, query: []queryParam{poolParam}},
	"GET /policy": {summary: "The pool's scaling policy.", status: 200, answer: PolicyView{}, query: []queryParam{poolParam}},
	"POST /policy": {summary: "Change the pool's scaling policy; fields not given stay as they are.",
		body: workflows.PolicyRequest{}, status: 200, answer: PolicyView{}, query: []queryParam{poolParam}},
	"POST /simulate": {summary: "Simulate the coming hours under the policy in force and with a change, each against reactive+waves tuned on the same work; nothing changes.",
		body: simulateBody{}, status: 200, answer: SimulationView{}, query: []queryParam{poolParam}},
	"POST /overrides": {summary: "Pin a site's connector count, pause or resume autoscaling, or drain a connector, until it expires.",
		body: overrideBody{}, status: 202, answer: planning.Override{}, query: []queryParam{poolParam}},
	"GET /overrides": {summary: "The overrides in force and the fleet's audit trail.", status: 200, answer: workflows.OverridesView{}, query: []queryParam{poolParam}},
	"POST /migrations": {summary: "Start a migration (201); the same request again gets the first answer, another under a used id the existing migration (200); without an id, the Idempotency-Key header names it; a VM with a running migration is a 409.",
		body: workflows.MigrationRequest{}, status: 201, answer: SubmitAnswer{}},
	"GET /migrations": {summary: "The pool's migrations, newest first, a page at a time.", status: 200, answer: MigrationList{},
		query: []queryParam{{"state", "string", "a phase: waiting, preparing, transferring, paused, awaiting-cutover, cutover, recording, done"},
			{"site", "string", "a site ID"}, {"sla_tier", "string", "an SLA tier"},
			{"limit", "integer", "page size, 1 to 1000 (default 100)"}, {"page", "string", "the next_page of the page before"}, poolParam}},
	"GET /migrations/:id": {summary: "A migration: phase, progress from its transfer's heartbeats, ETA, SLA time left, outcome.",
		status: 200, answer: MigrationView{}},
	"POST /migrations/:id/cancel":   {summary: "Cancel a migration; its partial copy is removed.", body: workflows.Control{}, status: 202, answer: ControlAnswer{}},
	"POST /migrations/:id/pause":    {summary: "Pause a migration's copy; the partial copy stays.", body: workflows.Control{}, status: 202, answer: ControlAnswer{}},
	"POST /migrations/:id/resume":   {summary: "Resume a paused copy from where it was.", body: workflows.Control{}, status: 202, answer: ControlAnswer{}},
	"POST /migrations/:id/priority": {summary: "Change a migration's priority.", body: workflows.PriorityChange{}, status: 202, answer: ControlAnswer{}},
	"POST /migrations/:id/approve":  {summary: "Approve a migration's cutover.", body: workflows.Control{}, status: 202, answer: ControlAnswer{}},
	"PUT /sites":                    {summary: "Upsert sites from a file (docs/import.md).", media: fileMedia, status: 200, answer: imports.Counts{}},
	"PUT /slas":                     {summary: "Upsert SLA tiers from a file.", media: fileMedia, status: 200, answer: imports.Counts{}},
	"PUT /inventory": {summary: "Upsert VMs from a file: PMO's columns or an RVTools vInfo export.", media: fileMedia, status: 200, answer: imports.Counts{},
		query: []queryParam{{"site", "string", "the site of rows that name none"}, {"tier", "string", "the SLA tier of rows that name none"}}},
	"POST /history": {summary: "Add finished migrations from another tool to the history.", media: fileMedia, status: 200, answer: imports.Counts{}},
	"POST /events": {summary: "Record a system event (maintenance or anomaly), or an array of up to 1000; running fleets re-plan.",
		body: eventBody{}, status: 200, answer: workflows.EventsAnswer{}},
	"GET /events":        {summary: "What recent events changed in the plan.", status: 200, answer: workflows.EventsView{}, query: []queryParam{poolParam}},
	"POST /events/close": {summary: "End an event, or cancel it before it starts.", body: closeBody{}, status: 200, answer: workflows.EventsAnswer{}},
	"POST /events/alertmanager": {summary: "Prometheus Alertmanager's webhook: firing alerts open anomaly events, resolved ones close them.",
		body: imports.AlertmanagerMessage{}, status: 200, answer: workflows.EventsAnswer{},
		query: []queryParam{{"site_label", "string", "the alert label naming the site (default site)"}}},
	"POST /events/calendar": {summary: "Import maintenance windows from an iCalendar file (the body) or ?url=.",
		media: map[string]string{"text/calendar": "an iCalendar file"}, status: 200, answer: workflows.EventsAnswer{},
		query: []queryParam{{"url", "string", "fetch the calendar from here instead of the body"}, {"calendar", "string", "the calendar's name, whose earlier windows this import replaces"},
			{"site", "string", "the site of events that name none"}, {"days", "integer", "how far ahead to expand recurrences, 1 to 366 (default 90)"}}},
	"POST /codec/decode": {summary: "Decrypt Temporal payloads, for the Web UI and the CLI (docs/security.md).", body: codecBody{}, status: 200, answer: codecBody{}},
	"POST /codec/encode": {summary: "Encrypt Temporal payloads.", body: codecBody{}, status: 200, answer: codecBody{}},
}

// codecBody is what the codec endpoints read and answer: Temporal payloads in JSON.
type codecBody struct {
	Payloads []struct {
		Metadata map[string]string `json:"metadata"`
		Data     string            `json:"data"`
	} `json:"payloads"`
}

// echoPath turns an Echo route path into an OpenAPI one: :id becomes {id}, and a
// trailing * becomes {file}.
var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

func openAPIPath(path string) (string, []string) {
	var params []string
	for _, m := range echoParam.FindAllStringSubmatch(path, -1) {
		params = append(params, m[1])
	}
	path = echoParam.ReplaceAllString(path, "{$1}")
	if strings.HasSuffix(path, "*") {
		path = strings.TrimSuffix(path, "*") + "{file}"
		params = append(params, "file")
	}
	return path, params
}

// openAPIDocument builds the document of the routes registered on e.
func openAPIDocument(e *echo.Echo, version string) (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "PMO, the Predictive Migration Orchestrator", Version: version,
			Description: "Every call but health, readiness and the dashboard's page needs an API key as a bearer token " +
				"(docs/security.md); x-pmo-role is the weakest role that may call it. Errors are application/problem+json."},
		Paths:      openapi3.NewPaths(),
		Components: &openapi3.Components{Schemas: openapi3.Schemas{}, SecuritySchemes: openapi3.SecuritySchemes{}},
	}
	doc.Components.SecuritySchemes["apiKey"] = &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().
		WithType("http").WithScheme("bearer").WithDescription("a PMO API key: starter apikey create")}
	schema := func(v any) (*openapi3.SchemaRef, error) {
		return openapi3gen.NewSchemaRefForValue(v, doc.Components.Schemas, openapi3gen.SchemaCustomizer(durations))
	}
	problemSchema, err := schema(Problem{})
	if err != nil {
		return nil, err
	}
	doc.Components.Schemas["Problem"] = problemSchema
	doc.Components.Responses = openapi3.ResponseBodies{"Problem": &openapi3.ResponseRef{Value: openapi3.NewResponse().
		WithDescription("a problem: what is wrong, and for bad input the field and the reason").
		WithContent(openapi3.Content{"application/problem+json": openapi3.NewMediaType().
			WithSchemaRef(&openapi3.SchemaRef{Ref: "#/components/schemas/Problem", Value: problemSchema.Value})})}}
	problemResponse := &openapi3.ResponseRef{Ref: "#/components/responses/Problem", Value: doc.Components.Responses["Problem"].Value}
	for _, r := range e.Routes() {
		key := routeKey(r.Method, r.Path)
		op, ok := operations[key]
		if !ok {
			return nil, fmt.Errorf("web: route %s has no entry in operations", key)
		}
		path, params := openAPIPath(r.Path)
		o := openapi3.NewOperation()
		o.Summary = op.summary
		o.OperationID = operationID(r.Method, path)
		role := routeRoles[key]
		o.Extensions = map[string]any{"x-pmo-role": string(role)}
		if role != anyone {
			o.Security = &openapi3.SecurityRequirements{openapi3.SecurityRequirement{"apiKey": []string{}}}
		}
		for _, p := range params {
			o.AddParameter(openapi3.NewPathParameter(p).WithSchema(openapi3.NewStringSchema()))
		}
		for _, q := range op.query {
			s := openapi3.NewStringSchema()
			if q.typ == "integer" {
				s = openapi3.NewIntegerSchema()
			}
			o.AddParameter(openapi3.NewQueryParameter(q.name).WithSchema(s).WithDescription(q.doc))
		}
		switch {
		case op.media != nil:
			content := openapi3.Content{}
			for media, what := range op.media {
				s := openapi3.NewStringSchema()
				s.Description = what
				content[media] = openapi3.NewMediaType().WithSchema(s)
			}
			o.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithContent(content)}
		case op.body != nil:
			s, err := schema(op.body)
			if err != nil {
				return nil, fmt.Errorf("web: %s body: %w", key, err)
			}
			o.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(s)}
		}
		ok200 := openapi3.NewResponse().WithDescription(http.StatusText(op.status))
		switch {
		case op.answerMedia != "":
			ok200.WithContent(openapi3.Content{op.answerMedia: openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())})
		case op.answer != nil:
			s, err := schema(op.answer)
			if err != nil {
				return nil, fmt.Errorf("web: %s answer: %w", key, err)
			}
			ok200.WithJSONSchemaRef(s)
		}
		o.AddResponse(op.status, ok200)
		o.Responses.Set("default", problemResponse)
		doc.AddOperation(path, r.Method, o)
	}
	return doc, nil
}

// durations documents a time.Duration as what it is in JSON: nanoseconds.
func durations(_ string, t reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
	if t == reflect.TypeFor[time.Duration]() {
		s.Description = "a duration in nanoseconds"
	}
	return nil
}

// operationID names an operation for client generators: getMigrationsId and so on.
func operationID(method, path string) string {
	if path == "/" {
		return "getDashboardPage"
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '.' || r == '-' || r == '*' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// openAPIRoutes serves the document, made once from the routes registered by then.
func (s *Server) openAPIRoutes(e *echo.Echo) {
	var once sync.Once
	var body []byte
	var err error
	e.GET("/openapi.yaml", func(c echo.Context) error {
		once.Do(func() {
			var doc *openapi3.T
			if doc, err = openAPIDocument(e, "1"); err == nil {
				body, err = yaml.Marshal(doc)
			}
		})
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/yaml", body)
	})
}

// checkOperations stops the server from starting with a route the document does not
// describe, or an entry for no route.
func checkOperations(e *echo.Echo) {
	registered := map[string]bool{}
	for _, r := range e.Routes() {
		registered[routeKey(r.Method, r.Path)] = true
		if _, ok := operations[routeKey(r.Method, r.Path)]; !ok {
			panic("web: route " + routeKey(r.Method, r.Path) + " has no entry in operations (web/openapi.go)")
		}
	}
	for key := range operations {
		if !registered[key] {
			panic("web: operations describes " + key + ", which is not a route")
		}
	}
}
