package provisioner

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"sync"

	"github.com/pmo-dev/pmo/sitenet"
)

// SiteLinks puts each site's connectors behind a network link of the site's own
// (package sitenet): the connector runs in the site's namespace, the link is shaped to
// the site's uplink, and the cloud services it dials (Temporal, PostgreSQL, the object
// store) are reached through the link's relays, so every byte it sends to the cloud
// crosses the link.
type SiteLinks struct {
	// Tag names the links, so that two systems on one host keep theirs apart: the
	// worker's pool.
	Tag string
	// Scale multiplies each site's uplink, for the demo's sizes.
	Scale float64
	// Services are the environment variables that name a cloud service a connector
	// dials, with their values: a host:port or a URL. Each connector gets them
	// rewritten to the relays of its site's link.
	Services map[string]string
	Logger   *slog.Logger

	mu    sync.Mutex
	links map[string]*sitenet.Link
}

// link opens the site's link, shaped to its uplink, or reshapes the one open.
func (s *SiteLinks) link(site string, uplink float64) (*sitenet.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rate := uplink * s.Scale
	if l, ok := s.links[site]; ok {
		if l.Rate() != rate {
			if err := l.SetRate(rate); err != nil {
				return nil, err
			}
		}
		return l, nil
	}
	l, err := sitenet.Open(s.Tag, site, rate, s.Logger)
	if err != nil {
		return nil, err
	}
	if s.links == nil {
		s.links = map[string]*sitenet.Link{}
	}
	s.links[site] = l
	return l, nil
}

// env is the connector's environment at the site: each service rewritten to its
// relay.
func (s *SiteLinks) env(l *sitenet.Link) ([]string, error) {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.Services)) {
		v := s.Services[name]
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err == nil && u.Scheme != "" && u.Host != "" {
			if u.Host, err = l.Forward(hostPort(u)); err != nil {
				return nil, err
			}
			out = append(out, name+"="+u.String())
			continue
		}
		addr, err := l.Forward(v)
		if err != nil {
			return nil, fmt.Errorf("provisioner: %s=%q, a URL or host:port, cannot be relayed to the site: %w", name, v, err)
		}
		out = append(out, name+"="+addr)
	}
	return out, nil
}

// hostPort is the URL's host with its port, the scheme's default where it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := map[string]string{"http": "80", "https": "443", "postgres": "5432", "postgresql": "5432"}[u.Scheme]
	return net.JoinHostPort(u.Hostname(), port)
}

// StopRelays stops relaying for every link, leaving the links and the connectors in
// them: a worker that stops leaves its connectors running, and the next one relays
// on the same addresses.
func (s *SiteLinks) StopRelays() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		l.StopRelays()
	}
	s.links = nil
}

// command is the connector's command line (line) run in the site's namespace, and
// its environment there.
func (s *SiteLinks) command(spec Spec, line []string) ([]string, []string, error) {
	l, err := s.link(spec.Site, spec.UplinkBytesSec)
	if err != nil {
		return nil, nil, fmt.Errorf("provisioner: link of site %s: %w", spec.Site, err)
	}
	env, err := s.env(l)
	if err != nil {
		return nil, nil, err
	}
	return append([]string{"ip", "netns", "exec", l.Namespace}, line...), env, nil
}
