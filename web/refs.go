package main

import (
	"context"
	"fmt"

	"github.com/pmo-dev/pmo/planning"
)

// The site IDs and SLA tier names that a request may name are read from PostgreSQL
// for each request that names any, so that one naming an unknown site or tier is
// refused at the edge and starts no workflow. The worker checks them again in the
// transaction that writes, for one removed in between.

// siteIDs are the known sites.
func (s *Server) siteIDs(ctx context.Context) ([]string, error) {
	sites, err := s.Store.Sites(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the sites: %w", err)
	}
	return planning.SiteIDs(sites), nil
}

// tierNames are the known SLA tiers.
func (s *Server) tierNames(ctx context.Context) ([]string, error) {
	tiers, err := s.Store.SLATiers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the SLA tiers: %w", err)
	}
	names := make([]string, len(tiers))
	for i, t := range tiers {
		names[i] = t.Name
	}
	return names, nil
}
