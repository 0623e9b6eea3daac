package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"mvdan.cc/sh/v3/syntax"
)

// docsFixtures are the files the examples send (curl's @name), by the name the docs
// give them: the samples docs/import.md and docs/events.md point to.
var docsFixtures = map[string]string{
	"sites.csv":         "imports/testdata/sites.csv",
	"slas.json":         "imports/testdata/slas.json",
	"vinfo.csv":         "imports/testdata/rvtools-vinfo.csv",
	"history.csv":       "imports/testdata/history.csv",
	"notification.json": "imports/testdata/alertmanager-firing.json",
	"ops.ics":           "e2e/testdata/ops.ics",
}

// docsExcluded are the API examples that cannot answer 2xx on the demo system, each
// with the reason; the key is a part of the command that only it has.
var docsExcluded = map[string]string{
	`/codec/decode`: "the codec endpoints exist only with PMO_PAYLOAD_KEY set, and the body stands for " +
		"payloads copied from a workflow's history (`[...]`); TestPayloadsAreEncryptedAndTheCodecEndpointDecodesThem covers them",
}

// docExample is one command of a shell example, and where it is.
type docExample struct {
	where, text string
	stmt        *syntax.Stmt
}

// Every shell example in the README and docs/ that calls the API answers 2xx when it is
// pasted, in order, into a shell while the demo system runs, on any day: the examples
// give times relative to now. The commands of those examples that set variables run
// too (export PMO_API_KEY=$(cat .data/admin.key), as the README says); their other
// commands (the starter, psql, temporal) are tested elsewhere and skipped here.
func TestDocsExamplesAnswer2xx(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var script []docExample // what runs, in order
	var calls []docExample  // the API calls among them
	excludedSeen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, err := filepath.Rel(root, f)
		require.NoError(t, err)
		for _, block := range shellBlocks(t, rel, string(b)) {
			if !slices.ContainsFunc(block, callsAPI) {
				continue
			}
			for _, c := range block {
				switch part := excludedBy(c); {
				case part != "":
					excludedSeen[part] = true
					t.Logf("%s: excluded: %s", c.where, docsExcluded[part])
				case callsAPI(c):
					script, calls = append(script, c), append(calls, c)
				case setsVariables(c):
					script = append(script, c)
				default:
					t.Logf("%s: not an API call, skipped: %s", c.where, strings.SplitN(c.text, "\n", 2)[0])
				}
			}
		}
	}
	require.Greater(t, len(calls), 40, "the README alone has more API examples than that; is the extraction broken?")
	for part := range docsExcluded {
		require.True(t, excludedSeen[part], "docsExcluded names %q, which no example has any more", part)
	}

	// The published calendar of docs/events.md, served here: on this machine, so the
	// worker may fetch it only as a host PMO_CALENDAR_HOSTS names.
	ics, err := os.ReadFile(filepath.Join(root, docsFixtures["ops.ics"]))
	require.NoError(t, err)
	calendar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write(ics)
	}))
	t.Cleanup(calendar.Close)

	s := startSystem(t, "PMO_CALENDAR_HOSTS="+strings.TrimPrefix(calendar.URL, "http://"))
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".data"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".data", "admin.key"), []byte(s.key+"\n"), 0o600))
	for name, src := range docsFixtures {
		b, err := os.ReadFile(filepath.Join(root, src))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	addr := strings.TrimPrefix(s.api, "http://")
	// The examples resize and drain a connector by its ID, as an operator would one
	// the fleet answered with: an operator's own, which no scale-in takes away while
	// they run (the fleet's may go within a minute idle, as these boot in seconds).
	var provisioned struct {
		Connectors []struct {
			ID string `json:"id"`
		} `json:"connectors"`
	}
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "provision", "site": "ams1", "count": 1, "who": "e2e", "why": "docs examples"}, &provisioned))
	require.Len(t, provisioned.Connectors, 1)
	rewrite := strings.NewReplacer(
		"localhost:8080", addr, "127.0.0.1:8080", addr,
		"default-ams1-1", provisioned.Connectors[0].ID,
		// make run's pool is default; the test system has a pool of its own.
		"default-ams1-", s.pool+"-ams1-",
		"https://calendar.example.com/ops.ics", calendar.URL+"/ops.ics",
	)

	// curl is the real one, printing "pmo-docs <status>" after each call and the
	// body of an answer that is not 2xx.
	var sh strings.Builder
	sh.WriteString(`set -eo pipefail
curl() {
	local body code
	body=$(mktemp)
	code=$(command curl -sS --max-time 60 -o "$body" -w '%{http_code}' "$@") || true
	echo "pmo-docs $code"
	case $code in 2??) ;; *) cat "$body"; echo ;; esac
	rm -f "$body"
}
`)
	if os.Getenv("LIBFAKETIME") != "" && os.Getenv("FAKETIME") != "" {
		// Under scripts/test-ahead.sh, the examples' date reads the system's moved clock.
		// Only date runs under libfaketime: a process under it shares its state with its
		// children through shared memory that a forked subshell removes when it exits,
		// after which the next command under it cannot start.
		sh.WriteString(`date() { LD_PRELOAD="$LIBFAKETIME" command date "$@"; }` + "\n")
	}
	for _, e := range script {
		sh.WriteString(rewrite.Replace(e.text) + "\n")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", sh.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PMO_API_KEY="+s.key, "DATABASE_URL="+s.dbURL)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the examples stopped: %s", out)
	t.Logf("%d API examples answered in %.1f s", len(calls), time.Since(began).Seconds())

	// Each answer belongs to the next API call, in order.
	answers := strings.Split(string(out), "pmo-docs ")[1:]
	require.Len(t, answers, len(calls), "every API example answered once: %s", out)
	var failed []string
	for i, a := range answers {
		code, body, _ := strings.Cut(a, "\n")
		if n, err := strconv.Atoi(code); err != nil || n < 200 || n > 299 {
			failed = append(failed, fmt.Sprintf("%s answered %s: %s\n  %s", calls[i].where, code, strings.TrimSpace(body), calls[i].text))
		}
	}
	require.Empty(t, failed, "examples that did not answer 2xx:\n%s", strings.Join(failed, "\n"))
}

// excludedBy returns the docsExcluded entry of an API example, or "".
func excludedBy(e docExample) string {
	for part := range docsExcluded {
		if callsAPI(e) && strings.Contains(e.text, part) {
			return part
		}
	}
	return ""
}

var fence = regexp.MustCompile("^( *)```(\\w*)\\s*$")

// shellBlocks returns the commands of each ```sh block of a Markdown file, a block
// indented in a list item included.
func shellBlocks(t *testing.T, file, text string) [][]docExample {
	t.Helper()
	var blocks [][]docExample
	var lines []string
	var first, indent int
	in, isShell := false, false
	for n, line := range strings.Split(text, "\n") {
		m := fence.FindStringSubmatch(line)
		switch {
		case m != nil && !in:
			in, isShell, indent, first, lines = true, m[2] == "sh", len(m[1]), n+2, nil
		case m != nil && in:
			in = false
			if isShell {
				blocks = append(blocks, splitCommands(t, file, first, strings.Join(lines, "\n")))
			}
		case in:
			lines = append(lines, strings.TrimPrefix(line, strings.Repeat(" ", indent)))
		}
	}
	return blocks
}

// splitCommands parses a shell block, whose first line is line first of file, into its
// commands, as the shell would, without their comments.
func splitCommands(t *testing.T, file string, first int, block string) []docExample {
	t.Helper()
	f, err := syntax.NewParser().Parse(strings.NewReader(block), file)
	require.NoError(t, err, "%s:%d: a shell example that does not parse", file, first)
	var out []docExample
	for _, st := range f.Stmts {
		out = append(out, docExample{where: fmt.Sprintf("%s:%d", file, first+int(st.Pos().Line())-1),
			text: block[st.Pos().Offset():st.End().Offset()], stmt: st})
	}
	return out
}

// callsAPI reports whether a command is a curl call to make run's API.
func callsAPI(e docExample) bool {
	call, ok := e.stmt.Cmd.(*syntax.CallExpr)
	return ok && len(call.Args) > 0 && call.Args[0].Lit() == "curl" &&
		(strings.Contains(e.text, "localhost:8080") || strings.Contains(e.text, "127.0.0.1:8080"))
}

// setsVariables reports whether a command only sets shell variables, such as
// `export PMO_API_KEY=$(cat .data/admin.key)` or `vms="[${vms%,}]"`.
func setsVariables(e docExample) bool {
	switch cmd := e.stmt.Cmd.(type) {
	case *syntax.CallExpr:
		return len(cmd.Args) == 0 && len(cmd.Assigns) > 0
	case *syntax.DeclClause:
		return cmd.Variant.Value == "export" && len(cmd.Args) > 0 && !slices.ContainsFunc(cmd.Args, func(a *syntax.Assign) bool { return a.Naked })
	}
	return false
}
