package imports

import (
	"strings"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sources"
)

// sitesSpec reads sites: where VMs run and connectors are placed.
var sitesSpec = spec[planning.SiteInfo]{
	kind: Sites,
	fields: []field{
		{"id", []string{"id"}, 1},
		{"name", []string{"name"}, 1},
		{"region", []string{"region"}, 1},
		{"uplink_bytes_per_sec", []string{"uplink_bytes_per_sec"}, 1},
		{"pool", []string{"pool"}, 1},
		{"sources", []string{"sources"}, 1},
	},
	optional: func(name string) bool { return name == "pool" || name == "sources" },
	parse: func(c *cells) planning.SiteInfo {
		return planning.SiteInfo{
			ID: c.id("id", ""), Name: c.text("name", ""), Region: c.text("region", ""),
			UplinkBytesSec: c.number("uplink_bytes_per_sec", true, 0), Pool: c.id("pool", planning.DefaultPool),
			Sources: c.sources("sources"),
		}
	},
}

// tiersSpec reads SLA tiers: how long a transfer and a cutover may take, in whole
// seconds as the schema keeps them, and the quantile of demand that capacity is sized
// to.
var tiersSpec = spec[planning.SLATier]{
	kind: SLAs,
	fields: []field{
		{"name", []string{"name", "sla_tier", "tier"}, 1},
		{"max_transfer_seconds", []string{"max_transfer_seconds"}, 1},
		{"max_downtime_seconds", []string{"max_downtime_seconds"}, 1},
		{"plan_quantile", []string{"plan_quantile"}, 1},
	},
	optional: func(name string) bool { return name == "plan_quantile" },
	parse: func(c *cells) planning.SLATier {
		t := planning.SLATier{
			Name:         c.text("name", ""),
			MaxTransfer:  c.seconds("max_transfer_seconds"),
			MaxDowntime:  c.seconds("max_downtime_seconds"),
			PlanQuantile: c.number("plan_quantile", true, 0.5),
		}
		if t.PlanQuantile >= 1 {
			c.bad("plan_quantile", "%g is not below 1: it is the quantile of demand that capacity is sized to", t.PlanQuantile)
		}
		return t
	},
}

// sources is a column's list of where disks may be read (sources.Entry), separated
// by spaces in CSV or an array in JSON, in normal form; nil where it is blank, which
// keeps the list the site has.
func (c *cells) sources(name string) []string {
	v, _ := c.get(name, "")
	if v == "" {
		return nil
	}
	l, err := sources.Parse(strings.Fields(v))
	if err != nil {
		c.bad(name, "%v", err)
		return nil
	}
	return l.Entries()
}

// maxTierSeconds bounds a tier's times: a year, far under where seconds overflow a
// time.Duration.
const maxTierSeconds = 366 * 24 * 3600

// seconds is a column's positive whole number of seconds, at most maxTierSeconds.
func (c *cells) seconds(name string) time.Duration {
	n := c.whole(name, true)
	if n > maxTierSeconds {
		c.bad(name, "%d is over %d seconds (a year)", n, maxTierSeconds)
	}
	return time.Duration(n) * time.Second
}
