package main

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pmo-dev/pmo/config"
)

// limitConnections bounds how long a client may hold a connection: one that sends no
// headers, half of them or a body too slowly, or that idles between calls, is closed,
// so that slow clients cannot hold the server's connections without a key.
func limitConnections(srv *http.Server, t config.HTTPTimeouts) {
	srv.ReadHeaderTimeout = t.ReadHeader
	srv.ReadTimeout = t.Read
	srv.WriteTimeout = t.Write()
	srv.IdleTimeout = t.Idle
}

// fileRoutes take a file as their body, which may take up to the read timeout to
// arrive before the call waits on anything.
var fileRoutes = map[string]bool{
	"PUT /sites": true, "PUT /slas": true, "PUT /inventory": true, "POST /history": true, "POST /events/calendar": true,
}

// deadline is the middleware that bounds how long a call waits on Temporal and
// PostgreSQL: its context ends after the wait timeout (more the read timeout for a
// file's upload), and what it waited on answers 504. The timeouts are resolved once,
// not per call.
func (s *Server) deadline() echo.MiddlewareFunc {
	t := s.Timeouts
	if t == (config.HTTPTimeouts{}) {
		t = config.DefaultHTTPTimeouts()
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			wait := t.Wait
			if fileRoutes[routeKey(c.Request().Method, c.Path())] {
				wait += t.Read
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
