package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/imports"
)

// importFileBytes is the size of the file TestAFullSizeImportKeepsTheWebAndWorkerSmall
// imports: just under the web server's 256 MiB limit on an import.
const importFileBytes = 256<<20 - 64<<10

// memoryLimit is what neither the web server nor the worker may reach while they
// import it (issue 19; docs/security.md).
const memoryLimit = 300 << 20

// A 256 MiB inventory, an RVTools-like export with PMO's columns and thirty more, is
// checked by the web server and written by the worker a batch at a time: neither
// process's peak resident memory reaches 300 MiB, and every row is imported. The
// figures are printed, and docs/security.md records them.
func TestAFullSizeImportKeepsTheWebAndWorkerSmall(t *testing.T) {
	s := startSystem(t)
	body, rows := inventoryOfSize(importFileBytes)
	began := time.Now()
	var counts imports.Counts
	require.Equal(t, 200, s.send("PUT", "/inventory?tier=gold", "text/csv", body, &counts))
	took := time.Since(began)
	require.Equal(t, imports.Counts{Rows: rows, Inserted: rows}, counts)
	db := s.connect()
	var n int
	require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*) FROM vms WHERE id LIKE 'big-%'`).Scan(&n))
	require.Equal(t, rows, n)

	for _, p := range s.procs {
		name := filepath.Base(p.Path)
		peak, rss := memoryOf(t, p.Process.Pid)
		t.Logf("%s: peak resident memory %.0f MiB (now %.0f MiB) after importing %d MiB, %d rows, in %.0f s",
			name, float64(peak)/(1<<20), float64(rss)/(1<<20), importFileBytes>>20, rows, took.Seconds())
		require.Less(t, peak, int64(memoryLimit), "%s's peak resident memory", name)
	}
}

// inventoryOfSize streams a CSV inventory of about size bytes, whose rows carry
// PMO's columns and thirty an RVTools export would, and says how many rows it has.
// The test holds none of it either.
func inventoryOfSize(size int) (io.Reader, int) {
	header := "id,name,site,cpu_cores,ram_bytes,storage_bytes"
	for i := range 30 {
		header += fmt.Sprintf(",annotation_%02d", i)
	}
	header += "\n"
	row := func(i int) string {
		var b strings.Builder
		id := fmt.Sprintf("big-%07d", i)
		// Fixed widths, so that every row has the same length.
		fmt.Fprintf(&b, "%s,%s-app,%s,%02d,%013d,%013d", id, id, []string{"ams1", "fra1", "lon1"}[i%3], 1+i%16, int64(1+i%64)<<30, int64(16+i%512)<<30)
		for j := range 30 {
			b.WriteString("," + strconv.Itoa(j) + "-annotation")
		}
		b.WriteByte('\n')
		return b.String()
	}
	rows := (size - len(header)) / len(row(0))
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		w.WriteString(header)
		for i := range rows {
			w.WriteString(row(i))
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr, rows
}

// memoryOf reads a process's peak resident memory (VmHWM) and its resident memory
// now (VmRSS), in bytes, from /proc.
func memoryOf(t *testing.T, pid int) (peak, now int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		field, value, ok := strings.Cut(line, ":")
		if !ok || (field != "VmHWM" && field != "VmRSS") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		require.NoError(t, err)
		if field == "VmHWM" {
			peak = kib << 10
		} else {
			now = kib << 10
		}
	}
	require.Positive(t, peak, "VmHWM of %d", pid)
	return peak, now
}
