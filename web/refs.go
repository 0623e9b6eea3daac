package main

import (
	"context"
	"fmt"
)

// references are the site IDs and SLA tier names that a request may name, read from
// PostgreSQL for each request that names any, so that one naming an unknown site or
// tier is refused at the edge and starts no workflow. The worker checks them again
// in the transaction that writes, for one removed in between.
func (s *Server) references(ctx context.Context) (sites, tiers []string, err error) {
	ss, err := s.Store.Sites(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the sites: %w", err)
	}
	ts, err := s.Store.SLATiers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the SLA tiers: %w", err)
	}
	sites, tiers = make([]string, len(ss)), make([]string, len(ts))
	for i, x := range ss {
		sites[i] = x.ID
	}
	for i, t := range ts {
		tiers[i] = t.Name
	}
	return sites, tiers, nil
}
