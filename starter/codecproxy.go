package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
)

// codecProxyCommand runs a codec endpoint on the operator's own machine for the
// Temporal Web UI. The UI calls a codec endpoint from the browser and cannot send a
// PMO key, so this proxy adds the operator's key (PMO_API_KEY) and forwards to the web
// server's /codec endpoints. The key never reaches the browser; only the Web UI's
// origin may call the proxy.
func codecProxyCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("codec-proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "where the proxy listens; keep it on loopback")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "codec-proxy",
		ShortUsage: "PMO_API_KEY=<viewer key> starter codec-proxy [-listen 127.0.0.1:8081] [-api http://127.0.0.1:8080]",
		ShortHelp:  "serve the codec endpoint to the Temporal Web UI with your API key (docs/security.md)",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("codec-proxy takes no arguments, got %q", args[0])
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			target, key := c.base, c.key
			ln, err := net.Listen("tcp", *listen)
			if err != nil {
				return fmt.Errorf("-listen: %w", err)
			}
			srv := &http.Server{Handler: codecProxy(target, key, cfg.TemporalUIURL), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
			}()
			slog.Info("codec proxy listening: set the Web UI's codec endpoint to it", "endpoint", "http://"+ln.Addr().String(),
				"forwards_to", target.JoinPath("codec").String(), "ui_origin", config.Origin(cfg.TemporalUIURL))
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
}

// codecProxy forwards POST /decode and /encode to the API's /codec endpoints with the
// key. Browsers may call it only from the Web UI's origin: another page could
// otherwise use the operator's key through it.
func codecProxy(api *url.URL, key, uiURL string) http.Handler {
	origin := config.Origin(uiURL)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(api)
		r.Out.URL.Path, r.Out.URL.RawPath = path.Join("/", api.Path, "codec", r.In.URL.Path), ""
		r.Out.Header.Del("Cookie")
		r.Out.Header.Del("Origin")
		r.Out.Header.Set("Authorization", "Bearer "+key)
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			if o != origin {
				http.Error(w, "only the Temporal Web UI at "+origin+" may call this codec proxy", http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", http.MethodPost)
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost || (r.URL.Path != "/decode" && r.URL.Path != "/encode") {
			http.Error(w, "the codec proxy answers POST /decode and POST /encode", http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}
