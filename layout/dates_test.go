package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// aDate is a date in a test: an RFC 3339 time, or a time.Date of a year.
var aDate = regexp.MustCompile(`\b(19|20)\d\d-[01]\d-[0-3]\dT\d\d:\d\d|time\.Date\((19|20)\d\d\b`)

// A test with a date runs with the clock a year ahead too (scripts/test-ahead.sh), so
// that a date which is the future today cannot pass and break it: every package whose
// test files or testdata hold a date is in scripts/ahead-packages, and in e2e, whose
// tests run ahead by name, every test function holding a date is named there.
func TestTestsWithDatesRunAhead(t *testing.T) {
	b, err := os.ReadFile("../scripts/ahead-packages")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{} // package → the tests named, none for all of them
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			listed[f[0]] = f[1:]
		}
	}
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		inTestdata := strings.Contains(filepath.ToSlash(path), "/testdata/")
		if !inTestdata && !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !aDate.Match(src) {
			return nil
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		if inTestdata {
			pkg = pkg[:strings.Index(pkg+"/", "/testdata/")]
		}
		tests, ok := listed[pkg]
		switch {
		case !ok:
			t.Errorf("%s holds a date, but %s is not in scripts/ahead-packages", path, pkg)
		case len(tests) > 0 && !inTestdata:
			for _, name := range datedTests(t, path, src) {
				if !slices.Contains(tests, name) {
					t.Errorf("%s: %s holds a date, but scripts/ahead-packages does not name it for %s", path, name, pkg)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// datedTests returns the test functions of a file that hold a date, and the name of any
// other declaration that holds one.
func datedTests(t *testing.T, path string, src []byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		text := src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset]
		if !aDate.Match(text) {
			continue
		}
		name := "a declaration at " + fset.Position(d.Pos()).String()
		if fn, ok := d.(*ast.FuncDecl); ok {
			name = fn.Name.Name
		}
		names = append(names, name)
	}
	return names
}
