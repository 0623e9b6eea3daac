package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/testenv"
)

// browser starts headless Chromium for the test and returns a context to drive a tab
// with; the page's console goes to the test log.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(testenv.Chromium(t)),
		// The tests run as root, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithBrowserOption(chromedp.WithConsolef(t.Logf)))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// page drives one browser tab for a test, failing it on any error.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

func (p page) text(css string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(css)))
	require.NoError(p.t, err)
	return strings.TrimSpace(v)
}

func (p page) evalString(js string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	require.NoError(p.t, err)
	return v
}

func (p page) eval(js string) int {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](js))
	require.NoError(p.t, err)
	return v
}

// click clicks the element css selects from within the page, in one step. The
// dashboard re-renders its tables every 3 s: chromedp.Click finds a button's node,
// then clicks it, and loses a row re-rendered in between ("Could not find node").
func click(css string) chromedp.Action[chromedp.Void] {
	sel, _ := json.Marshal(css)
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			clicked, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+string(sel)+`); e?.click(); return !!e })()`)(ctx, t)
			if err == nil && !clicked {
				err = fmt.Errorf("click: nothing matches %s", css)
			}
			return err
		}),
	)
}

// setFilter chooses a value of a filter as a person would: the page hears the change.
func (p page) setFilter(id, value string) {
	p.t.Helper()
	p.eval(`(() => { const f = document.getElementById("` + id + `"); f.value = "` + value + `"; f.dispatchEvent(new Event("change")); return 0 })()`)
}

// The dashboard, in a real browser, against a running system: a key signs in, the
// fleet and a migration waiting for approval show, the approve button finishes the
// migration with the key's name and a reason in the audit trail, a viewer's key sees
// no buttons, and a bad key is refused. PMO_SCREENSHOT names a file to keep the
// screenshot in (docs/dashboard.png for the README).
func TestDashboardShowsTheFleetAndApprovesACutover(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	p := page{t, browser(t)}
	db := s.connect()
	vms, _ := s.vmsBySize(db, "ams1", 2, false)
	operator := s.createKey("dana", "operator")
	viewer := s.createKey("vic", "viewer")
	// Two migrations wait for an operator's approval: one is approved in the page,
	// the other shows the viewer a migration it may not touch.
	id, other := "dash-"+s.pool, "dash-other-"+s.pool
	for i, m := range []string{id, other} {
		require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": m, "vm_id": vms[i], "require_approval": true}, nil))
	}
	for _, m := range []string{id, other} {
		s.eventually(2*time.Minute, m+" awaits its cutover", func() bool {
			var v migrationView
			s.call("GET", "/migrations/"+m, nil, &v)
			return v.Phase == "awaiting-cutover"
		})
	}

	// lon1's forecasts of the past day did worse than the hour-of-day rate would have:
	// a band of 0..6 where two came (held, but loose), against the rate's 1..3.
	for k := 2; k < 32; k++ {
		hour := time.Now().Truncate(time.Hour).Add(-time.Duration(k) * time.Hour)
		_, err := db.Exec(context.Background(), `INSERT INTO forecasts (pool, site_id, generated_at, target_hour, model, planned,
			adhoc_mean, adhoc_lo, adhoc_hi, lo_level, hi_level, baseline_lo, baseline_hi, actual_arrivals)
			VALUES ($1, 'lon1', $2, $3, 'count(week)', 0, 2, 0, 6, 0.1, 0.9, 1, 3, 2)`, s.pool, hour.Add(-time.Hour), hour)
		require.NoError(t, err)
	}

	// A wave planned for an hour from now: it runs, and has started nothing yet.
	wave := "dw" + s.pool
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{"id": wave, "vm_ids": vms[:1],
		"earliest_start": later.Format(time.RFC3339), "deadline": later.Add(time.Hour).Format(time.RFC3339), "plan": true}, nil))
	require.Equal(t, 202, s.call("POST", "/waves", map[string]any{"id": wave}, nil))

	// A second pool, with a site and no fleet running: the header offers both.
	second := s.pool + "b"
	_, err := db.Exec(context.Background(), `INSERT INTO sites (id, name, region, uplink_bytes_per_sec, pool) VALUES ('zrh1', 'Zurich', 'eu', 1e9, $1)`, second)
	require.NoError(t, err)

	row := `#migrations tr[data-id="` + id + `"]`
	signIn := chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`))
	p.do(
		chromedp.Navigate(s.api+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		// A key that is not one is refused, and the page says so.
		chromedp.SendKeys(chromedp.ID("key"), "pmo_000000000000_"+strings.Repeat("A", 43)),
		signIn,
		chromedp.WaitVisible(`//p[@id="login-error" and contains(., "refused")]`),
		chromedp.SetValue(chromedp.ID("key"), operator),
		signIn,
		chromedp.WaitVisible(chromedp.ID("app")),
		chromedp.WaitVisible(chromedp.CSS(`#connectors td.state-warm, #connectors td.state-active`)),
		chromedp.WaitVisible(chromedp.CSS(row+` button[data-action="approve"]`)),
	)
	require.Equal(t, "dana (operator)", p.text("#who"))
	require.Equal(t, s.pool+" (3 sites)|"+second+" (1 site)", p.evalString(`[...document.querySelectorAll("#pool-select option")].map((o) => o.textContent).join("|")`))
	require.Equal(t, s.pool, p.evalString(`document.querySelector("#pool-select").value`), "the key's own pool first")
	// Each site has its two charts, drawn.
	for _, site := range []string{"ams1", "fra1", "lon1"} {
		p.do(chromedp.WaitVisible(chromedp.CSS(`#site-` + site + ` .uplot + .uplot canvas`)))
	}
	require.Equal(t, 6, p.eval(`document.querySelectorAll("#sites .uplot canvas").length`), "two charts for each of 3 sites")
	require.Equal(t, "ams1", p.evalString(`document.querySelector("#scale-form select[name=site]").value`), "the site forms offer the pool's sites")
	require.Contains(t, p.text("#connectors tbody"), "ams1")
	require.Equal(t, "awaiting-cutover", p.text(row+" td:nth-child(5)"))
	// The plan shows lon1's skill, none (pinball (0.1 × 2 + 0.1 × 4) / 2 = 0.3 against
	// the rate's 0.1), and the gate scales it on its work.
	p.do(chromedp.WaitVisible(`//table[@id="skill"]//td[.="-2.00"]`))
	require.Equal(t, "lon1 30 100% 0.300 0.100 -2.00", p.evalString(`[...document.querySelectorAll("#skill tbody tr")]
		.map((r) => [...r.cells].map((c) => c.textContent).join(" ")).find((r) => r.startsWith("lon1 "))`))
	p.do(chromedp.WaitVisible(`//ul[@id="reasons"]/li[contains(., "no better than the hour-of-day rate over 30 hours")]`))

	// An action needs a reason; then the button approves the cutover.
	approve := click(row + ` button[data-action="approve"]`)
	p.do(
		approve,
		chromedp.WaitVisible(`//p[@id="flash" and contains(., "Why")]`),
		chromedp.SendKeys(chromedp.ID("why"), "change window open"),
		approve,
		chromedp.WaitVisible(`//p[@id="flash" and contains(., "approve: sent")]`),
	)
	require.Contains(t, p.text("#flash"), id)
	var view migrationView
	s.eventually(2*time.Minute, id+" finishes once approved", func() bool {
		s.call("GET", "/migrations/"+id, nil, &view)
		return view.Phase == "done"
	})
	require.Equal(t, "succeeded", view.Outcome)

	// The waves table links the wave to its workflow; the operator pauses it, then
	// cancels it, from the page, with the reason already given.
	waveRow := `#waves tr[data-id="` + wave + `"]`
	p.do(chromedp.WaitVisible(chromedp.CSS(waveRow + `[data-state="running"]`)))
	require.Contains(t, p.evalString(`document.querySelector('`+waveRow+` a').href`), "/workflows/wave-"+wave)
	p.do(
		click(waveRow+` button[data-action="pause"]`),
		chromedp.WaitVisible(`//p[@id="flash" and contains(., "pause: sent to wave")]`),
		chromedp.WaitVisible(chromedp.CSS(waveRow+`[data-state="paused"]`)),
		click(waveRow+` button[data-action="cancel"]`),
		chromedp.WaitVisible(chromedp.CSS(waveRow+`[data-state="cancelled"]`)),
		// The ended wave's report, from PostgreSQL: its one migration never ran.
		chromedp.WaitVisible(`//table[@id="waves"]//td[contains(., "1 not run") and contains(., "by 0 connector(s)")]`),
	)

	// The site's timeline has the finished migration in the current hour (the history
	// holds a migration once it ends), the connector that ran, and the forecast and the
	// plan for the hours ahead.
	var tl struct {
		Hours []struct {
			Hour              time.Time `json:"hour"`
			Forecast          *float64  `json:"forecast"`
			Actual            *int      `json:"actual"`
			PlannedConnectors *int      `json:"planned_connectors"`
			LiveConnectors    *int      `json:"live_connectors"`
		} `json:"hours"`
	}
	require.Equal(t, 200, s.call("GET", "/sites/ams1/timeline?hours=48", nil, &tl))
	require.Len(t, tl.Hours, 97, "48 hours back, the current one, 48 ahead")
	current := tl.Hours[48]
	require.WithinDuration(t, time.Now().Truncate(time.Hour), current.Hour, 0)
	require.NotNil(t, current.Actual)
	require.GreaterOrEqual(t, *current.Actual, 1, "the approved migration started at ams1 this hour")
	require.NotNil(t, current.LiveConnectors)
	require.GreaterOrEqual(t, *current.LiveConnectors, 1)
	ahead := tl.Hours[60]
	require.NotNil(t, ahead.Forecast, "the fleet forecast the hours ahead")
	require.NotNil(t, ahead.PlannedConnectors, "and planned them")
	require.Nil(t, ahead.Actual)

	// The approval went out under the operator's key, audited with its ID.
	var keyName, role string
	var status int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT k.name, a.role, a.status FROM api_audit a JOIN api_keys k ON k.id = a.key_id
		WHERE a.route = '/migrations/:id/approve' AND a.path = $1`, "/migrations/"+id+"/approve").Scan(&keyName, &role, &status))
	require.Equal(t, []any{"dana", "operator", 202}, []any{keyName, role, status})

	// A site override from its form: the fleet applies it and its trail says so.
	p.do(
		chromedp.SetValue(chromedp.CSS(`#pin-form input[name="max"]`), "2"),
		chromedp.Click(chromedp.CSS(`#pin-form button[type="submit"]`)),
		chromedp.WaitVisible(`//p[@id="flash" and contains(., "ams1 pinned to 1–2 connectors for 2h")]`),
		chromedp.WaitVisible(`//table[@id="decisions"]//td[.="pin applied"]`),
	)
	require.Contains(t, p.text("#decisions tbody tr:first-child"), "dana")
	require.Contains(t, p.text("#decisions tbody tr:first-child"), "change window open")

	// The page follows the migration to its end by itself, lists the call in its
	// audit trail, and shows the migration in a state filter; then the screenshot.
	p.do(
		chromedp.WaitVisible(chromedp.CSS(row+`[data-phase="done"]`)),
		chromedp.WaitVisible(`//table[@id="audit"]//td[.="POST /migrations/`+id+`/approve"]`),
	)
	require.Contains(t, p.text("#audit tbody tr:first-child"), "dana (operator)")
	require.Equal(t, vms[0], p.text(row+" td:nth-child(2)"), "the VM")
	p.setFilter("f-state", "done")
	p.do(
		chromedp.WaitNotPresent(chromedp.CSS(`#migrations tr[data-id="`+other+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	// Choosing the other pool shows its fleet, here not started, and links to it.
	p.setFilter("pool-select", second)
	p.do(chromedp.WaitVisible(`//p[@id="updated" and contains(., "fleet-` + second + ` is not running")]`))
	require.True(t, strings.HasSuffix(p.evalString(`document.querySelector("#fleet-link").href`), "/workflows/fleet-"+second))
	p.setFilter("pool-select", s.pool)
	p.do(chromedp.WaitVisible(chromedp.CSS(`#connectors td.state-warm, #connectors td.state-active`)))
	p.do(chromedp.WaitVisible(`//p[@id="updated" and not(contains(., "not running"))]`))

	shot, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err, "the screenshot is a PNG")
	require.GreaterOrEqual(t, img.Bounds().Dx(), 1400)
	colours := map[uint32]bool{}
	for x := 0; x < img.Bounds().Dx(); x += 7 {
		for y := 0; y < img.Bounds().Dy(); y += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>12<<8|g>>12<<4|b>>12] = true
		}
	}
	require.Greater(t, len(colours), 8, "the screenshot shows a rendered page, not a blank one")
	if out := os.Getenv("PMO_SCREENSHOT"); out != "" {
		require.NoError(t, os.WriteFile(out, shot, 0o644))
	}

	// A viewer signs in to the same page and sees everything but the controls.
	p.do(
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SetValue(chromedp.ID("key"), viewer),
		signIn,
		chromedp.WaitVisible(`//span[@id="who" and .="vic (viewer)"]`),
	)
	p.setFilter("f-state", "")
	p.do(chromedp.WaitVisible(chromedp.CSS(`#migrations tr[data-id="` + other + `"][data-phase="awaiting-cutover"]`)))
	require.Zero(t, p.eval(`document.querySelectorAll("#migrations button").length + `+
		`[...document.querySelectorAll(".operator")].filter((e) => !e.hidden).length`), "a viewer gets no controls")
}
