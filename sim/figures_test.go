package sim

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The results table docs/simulator.md publishes is what the simulator gives today on
// the 28-day Azure-shaped trace with starter simulate's defaults (the table is what
// `starter simulate -trace trace.csv -markdown` prints), within 1%: a change that
// moves the figures fails here until the docs are measured again.
func TestThePublishedFiguresAreWhatTheSimulatorGives(t *testing.T) {
	w, err := NewWorld(azureTrace(t), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	policies, err := DefaultKnobs().Policies(PolicyNames)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	for _, p := range policies {
		r, err := Run(w, p)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	doc, err := os.ReadFile("../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(Markdown(results)), "\n")
	published := tableAt(string(doc), got[0])
	if len(published) != len(got) {
		t.Fatalf("docs/simulator.md's results table has %d lines, the simulator gives %d:\n%s", len(published), len(got), Markdown(results))
	}
	for i := 2; i < len(got); i++ {
		want, have := cells(published[i]), cells(got[i])
		if want[0] != have[0] || len(want) != len(have) {
			t.Fatalf("row %d: published %q, the simulator gives %q", i, published[i], got[i])
		}
		for j := 1; j < len(want); j++ {
			a, b := number(t, want[j]), number(t, have[j])
			if math.Abs(a-b) > max(0.01*math.Abs(a), 1) {
				t.Errorf("%s, column %d: published %s, the simulator gives %s (more than 1%% apart)\n%s", want[0], j, want[j], have[j], Markdown(results))
			}
		}
	}
}

// tableAt is the markdown table whose header line is header.
func tableAt(doc, header string) []string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != header {
			continue
		}
		var table []string
		for _, row := range lines[i:] {
			if !strings.HasPrefix(row, "|") {
				break
			}
			table = append(table, strings.TrimSpace(row))
		}
		return table
	}
	return nil
}

// cells are a table row's cells, trimmed.
func cells(row string) []string {
	parts := strings.Split(strings.Trim(row, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// number reads a cell such as "2,920.7", "18 s" or "30%".
func number(t *testing.T, cell string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(strings.NewReplacer(",", "", " s", "", "%", "").Replace(cell), 64)
	if err != nil {
		t.Fatalf("cell %q: %v", cell, err)
	}
	return x
}
