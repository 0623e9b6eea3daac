package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
)

// anyone marks the routes that need no key: health and readiness, which probes and
// load balancers call without one.
const anyone apikey.Role = "anyone"

// routeRoles is the one table of who may call what: every route, as Echo registers it
// (method and path pattern), and the weakest role that may call it. Routes refuses to
// register a route that is missing here, and TestEveryRouteHasARole checks both ways.
// Reads are viewer; running migrations and the fleet is operator; the scaling policy
// is admin.
var routeRoles = map[string]apikey.Role{
	"GET /healthz": anyone,
	"GET /readyz":  anyone,
	// The dashboard's page and assets hold no data; its calls to the API carry a key.
	"GET /":            anyone,
	"GET /dashboard/*": anyone,
	"GET /me":          apikey.Viewer,
	"GET /pools":       apikey.Viewer,
	"GET /audit":       apikey.Viewer,

	"GET /sites/:site/timeline": apikey.Viewer,
	"GET /metrics":              apikey.Viewer,
	"GET /openapi.yaml":         apikey.Viewer,

	"GET /connectors": apikey.Viewer,
	"GET /plan":       apikey.Viewer,
	"GET /policy":     apikey.Viewer,
	"GET /overrides":  apikey.Viewer,
	"GET /migrations": apikey.Viewer,
	"GET /events":     apikey.Viewer,

	"GET /migrations/:id":   apikey.Viewer,
	"GET /waves/:id":        apikey.Viewer,
	"GET /waves":            apikey.Viewer,
	"GET /waves/:id/report": apikey.Viewer,

	"POST /forecast":                  apikey.Operator,
	"POST /simulate":                  apikey.Operator,
	"POST /scale":                     apikey.Operator,
	"POST /overrides":                 apikey.Operator,
	"POST /migrations":                apikey.Operator,
	"POST /waves":                     apikey.Operator,
	"POST /waves/:id/pause":           apikey.Operator,
	"POST /waves/:id/resume":          apikey.Operator,
	"POST /waves/:id/cancel":          apikey.Operator,
	"POST /waves/:id/approve":         apikey.Operator,
	"POST /waves/:id/retry":           apikey.Operator,
	"POST /migrations/:id/cancel":     apikey.Operator,
	"POST /migrations/:id/pause":      apikey.Operator,
	"POST /migrations/:id/resume":     apikey.Operator,
	"POST /migrations/:id/priority":   apikey.Operator,
	"POST /migrations/:id/approve":    apikey.Operator,
	"PUT /sites":                      apikey.Operator,
	"PUT /slas":                       apikey.Operator,
	"PUT /inventory":                  apikey.Operator,
	"POST /history":                   apikey.Operator,
	"POST /events":                    apikey.Operator,
	"POST /events/close":              apikey.Operator,
	"POST /events/alertmanager":       apikey.Operator,
	"POST /events/calendar":           apikey.Operator,
	"POST /connectors":                apikey.Operator,
	"POST /connectors/:id/deregister": apikey.Operator,
	"POST /connectors/:id/metrics":    apikey.Operator,
	"POST /policy":                    apikey.Admin,

	// Decoding shows what workflows carry, as reading them does; encoding makes
	// ciphertext anyone with the key could have made, but only an operator, who may
	// start and signal workflows, has a use for it.
	"POST /codec/decode": apikey.Viewer,
	"POST /codec/encode": apikey.Operator,
}

// apiKeyContext is where authenticate leaves the caller's store.APIKey for handlers.
const apiKeyContext = "pmo.apikey"

// routeKey is a route's entry in routeRoles.
func routeKey(method, path string) string { return method + " " + path }

// unmappedRoutes lists the routes registered on e that routeRoles does not name.
func unmappedRoutes(e *echo.Echo) []string {
	var missing []string
	for _, r := range e.Routes() {
		if _, ok := routeRoles[routeKey(r.Method, r.Path)]; !ok {
			missing = append(missing, routeKey(r.Method, r.Path))
		}
	}
	slices.Sort(missing)
	return missing
}

// defaultKeyCacheTTL is how long a looked-up key is trusted before it is read again:
// a revoked key keeps working for at most this long on each web server.
const defaultKeyCacheTTL = 10 * time.Second

// knownReloadEvery is how often, at most, the hashes of every key are read again to
// answer a token the cache does not hold: a flood of made-up keys, from any number of
// addresses, costs PostgreSQL one query a second.
const knownReloadEvery = time.Second

// keyCache remembers the keys found in PostgreSQL for a short while, so that a
// request costs no query. The web server reads the keys itself, rather than through a
// workflow, because every request needs one: a workflow round trip per request would
// be slow and would make Temporal's history the place API keys are checked.
//
// A token it does not hold is first looked for among the hashes of every key (known),
// read again when the token arrived after the last read, at most once every
// knownReloadEvery; only a token found there costs a query of its own. So a valid key
// is always checked, even from an address that has spent its failure budget on bad
// ones, and bad keys cost no query each. Both maps are bounded by the table's size.
type keyCache struct {
	store *store.Store
	ttl   time.Duration

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedKey
	known   map[[sha256.Size]byte]bool

	// reload serialises the reads of known; knownRead is when the last one began.
	reload    sync.Mutex
	knownRead time.Time
	// reads counts them, for tests.
	reads int
}

type cachedKey struct {
	key   store.APIKey
	until time.Time
}

func newKeyCache(s *store.Store, ttl time.Duration) *keyCache {
	return &keyCache{store: s, ttl: ttl, entries: map[[sha256.Size]byte]cachedKey{}}
}

// lookup returns the stored key whose hash the token has, or store.ErrUnknownAPIKey.
func (kc *keyCache) lookup(ctx context.Context, token string) (store.APIKey, error) {
	h := [sha256.Size]byte(apikey.Hash(token))
	arrived := time.Now()
	kc.mu.Lock()
	e, ok := kc.entries[h]
	kc.mu.Unlock()
	if ok && arrived.Before(e.until) {
		return e.key, nil
	}
	if !ok {
		known, err := kc.isKnown(ctx, h, arrived)
		if err != nil {
			return store.APIKey{}, err
		}
		if !known {
			return store.APIKey{}, store.ErrUnknownAPIKey
		}
	}
	k, err := kc.store.UseAPIKey(ctx, h[:])
	if err != nil {
		return store.APIKey{}, err
	}
	kc.mu.Lock()
	kc.entries[h] = cachedKey{key: k, until: arrived.Add(kc.ttl)}
	kc.mu.Unlock()
	return k, nil
}

// isKnown reports whether a key with hash h existed when the call arrived: it waits
// for a read of every key's hash begun after that moment, making one when it is
// allowed to (one a knownReloadEvery) if none is.
func (kc *keyCache) isKnown(ctx context.Context, h [sha256.Size]byte, arrived time.Time) (bool, error) {
	kc.reload.Lock()
	defer kc.reload.Unlock()
	if kc.knownRead.Before(arrived) {
		if wait := time.Until(kc.knownRead.Add(knownReloadEvery)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		kc.knownRead = time.Now()
		kc.reads++
		hashes, err := kc.store.APIKeyHashes(ctx)
		if err != nil {
			// The next call reads again rather than trusting a read that failed.
			kc.knownRead = time.Time{}
			return false, err
		}
		known := make(map[[sha256.Size]byte]bool, len(hashes))
		for _, b := range hashes {
			if len(b) == sha256.Size {
				known[[sha256.Size]byte(b)] = true
			}
		}
		kc.mu.Lock()
		kc.known = known
		kc.mu.Unlock()
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return kc.known[h], nil
}

// unauthorized is a 401 that tells the client how to authenticate (RFC 6750).
func unauthorized(c echo.Context, detail string, invalid bool) error {
	challenge := `Bearer realm="pmo"`
	if invalid {
		challenge += `, error="invalid_token"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return problem(http.StatusUnauthorized, detail)
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(c echo.Context) (string, bool) {
	scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// authenticate is the middleware that lets a request through only with a valid key
// whose role may call the route (routeRoles), and audits every call that is not a
// read. A request that matches no route (404, 405) needs a valid key of any role, so
// that the API's shape is not shown to strangers. The role is looked up by the route
// Echo matched, not by the raw path, so an encoded or odd path cannot pick a weaker
// entry than the handler it reaches.
func (s *Server) authenticate(keys *keyCache, limit *limits) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			need, routed := routeRoles[routeKey(req.Method, c.Path())]
			if need == anyone {
				return next(c)
			}
			token, ok := bearer(c)
			if !ok {
				return limit.unauthenticated(c, unauthorized(c, "this call needs an API key: send the header Authorization: Bearer <key> (docs/security.md)", false))
			}
			key, err := keys.lookup(req.Context(), token)
			if errors.Is(err, store.ErrUnknownAPIKey) {
				s.Logger.Warn("unknown API key", "claimed_id", apikey.IDOf(token), "method", req.Method, "path", req.URL.Path, "remote", c.RealIP())
				return limit.unauthenticated(c, unauthorized(c, "the API key is not known", true))
			}
			if err != nil {
				s.Logger.Error("cannot check an API key", "error", err)
				return busy(http.StatusServiceUnavailable, "cannot check the API key: PostgreSQL does not answer; retry later")
			}
			if key.Revoked() {
				s.Logger.Warn("revoked API key", "key_id", key.ID, "method", req.Method, "path", req.URL.Path, "remote", c.RealIP())
				return limit.unauthenticated(c, unauthorized(c, fmt.Sprintf("the API key %s was revoked at %s", apikey.Display(key.ID), key.RevokedAt.UTC().Format(time.RFC3339)), true))
			}
			// A call over the key's rate is refused before it does anything, and is not
			// audited: a flood must not become a flood of audit rows.
			if err := limit.key(c, key.ID); err != nil {
				return err
			}
			entry := store.AuditEntry{KeyID: key.ID, Role: key.Role, Method: cut(req.Method, maxAuditMethod),
				Path: cut(req.URL.EscapedPath(), maxAuditPath), Route: c.Path(), RequestID: requestID(c)}
			c.Set(apiKeyContext, key)
			if isRead(req.Method) {
				return s.authorize(c, next, need, routed, key)
			}
			// The call is audited before it runs, so that one that cannot be audited
			// is refused, not served; its answer is recorded after.
			auditID, err := s.beginAudit(req.Context(), entry)
			if err != nil {
				return err
			}
			// A handler that panics may have done part of its work: the call is
			// recorded as the 500 that Recover answers, then the panic goes on.
			defer func() {
				if r := recover(); r != nil {
					s.finishAudit(req.Context(), auditID, entry, http.StatusInternalServerError)
					panic(r)
				}
			}()
			err = s.authorize(c, next, need, routed, key)
			status := c.Response().Status
			if err != nil && !c.Response().Committed {
				status = toProblem(err).Status
			}
			s.finishAudit(req.Context(), auditID, entry, status)
			return err
		}
	}
}

// connectorRoutes are the routes a connector key may call: its own metrics (the
// route's :id must be its connector) and who it is.
var connectorRoutes = map[string]bool{"POST /connectors/:id/metrics": true, "GET /me": true}

// authorize runs the call if the key's role allows the route, and answers 403 if not.
func (s *Server) authorize(c echo.Context, next echo.HandlerFunc, need apikey.Role, routed bool, key store.APIKey) error {
	if key.Role == apikey.Connector {
		id := c.Param("id")
		if !connectorRoutes[routeKey(c.Request().Method, c.Path())] || (id != "" && id != key.ConnectorID) {
			return problem(http.StatusForbidden, fmt.Sprintf("the key %s (%q) belongs to connector %s: it may only post that connector's metrics, POST /connectors/%s/metrics",
				apikey.Display(key.ID), key.Name, key.ConnectorID, key.ConnectorID))
		}
		return next(c)
	}
	if routed && !key.Role.Allows(need) {
		return problem(http.StatusForbidden, fmt.Sprintf("%s %s needs the %s role; the key %s (%q) has the %s role",
			c.Request().Method, c.Path(), need, apikey.Display(key.ID), key.Name, key.Role))
	}
	return next(c)
}

// isRead reports whether a method only reads; reads are not audited.
func isRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// Bounds of what the audit trail keeps of a call: a method or path longer than these
// (a client's text) is cut, so that no call makes a large row.
const (
	maxAuditMethod = 16
	maxAuditPath   = 1024
)

// cut returns s, cut to at most n bytes and marked so when it was longer. Callers pass
// text that is ASCII (a method, an escaped path).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// requestID is the request's ID: the client's (safeRequestID has checked it) or the
// one Echo gave it.
func requestID(c echo.Context) string {
	if id := c.Request().Header.Get(echo.HeaderXRequestID); id != "" {
		return id
	}
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// maxRequestID is the longest X-Request-Id a client may choose.
const maxRequestID = 128

// validRequestID reports whether a client's X-Request-Id is 1 to maxRequestID
// printable ASCII characters: it is logged, answered and audited as it is.
func validRequestID(id string) bool {
	return id != "" && len(id) <= maxRequestID && printableASCII(id)
}

// printableASCII reports whether s holds only printable ASCII characters.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// safeRequestID runs before routing and replaces a client's X-Request-Id that is not
// valid with a new one, so that no log line, answer or audit row carries bytes a
// client chose to break them (text that is not UTF-8 made the audit insert fail).
func (s *Server) safeRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
			fresh := middleware.DefaultRequestIDConfig.Generator()
			h.Set(echo.HeaderXRequestID, fresh)
			s.Logger.Warn("request ID replaced: want 1 to 128 printable ASCII characters", "request_id", fresh, "length", len(id))
		}
		return next(c)
	}
}

// beginAudit writes a call's audit entry before it runs; a call whose entry cannot be
// written is refused with a 503 and does nothing.
func (s *Server) beginAudit(ctx context.Context, e store.AuditEntry) (int64, error) {
	id, err := s.Store.BeginAudit(ctx, e)
	if err != nil {
		s.Logger.Error("audit entry not written; the call is refused", "error", err, "key_id", e.KeyID, "method", e.Method,
			"path", e.Path, "request_id", e.RequestID)
		return 0, busy(http.StatusServiceUnavailable, "the call cannot be audited (PostgreSQL does not answer), so nothing was done; retry later")
	}
	return id, nil
}

// finishAudit records the answer of a call in its audit entry. The call has done what
// it did by then, so a failed write is logged, with the answer, and the caller still
// gets it; the entry shows status 0.
func (s *Server) finishAudit(ctx context.Context, id int64, e store.AuditEntry, status int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := s.Store.FinishAudit(ctx, id, status); err != nil {
		s.Logger.Error("audit entry's answer not recorded", "error", err, "audit_id", id, "key_id", e.KeyID,
			"method", e.Method, "path", e.Path, "status", status, "request_id", e.RequestID)
	}
}

// protect puts every route registered on e behind authenticate. A route without a role
// in routeRoles is a programmer's error that would leave it open or shut by accident,
// so it stops the server from starting.
func (s *Server) protect(e *echo.Echo) {
	if missing := unmappedRoutes(e); len(missing) > 0 {
		panic("web: routes without a role in routeRoles: " + strings.Join(missing, ", "))
	}
	limit := s.RateLimit
	if limit == (config.RateLimit{}) {
		limit = config.DefaultRateLimit()
	}
	s.keys = newKeyCache(s.Store, cmp.Or(s.KeyCacheTTL, defaultKeyCacheTTL))
	e.Use(s.authenticate(s.keys, newLimits(limit)))
}

// readCount is how many times the keys' hashes were read.
func (kc *keyCache) readCount() int {
	kc.reload.Lock()
	defer kc.reload.Unlock()
	return kc.reads
}
