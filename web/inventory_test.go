package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/store/storetest"
)

func TestPutInventory(t *testing.T) {
	s := storetest.New(t)
	_, err := s.Pool.Exec(context.Background(), `
		INSERT INTO sites VALUES ('dc-east', 'East', 'eu', 1e9), ('dc-west', 'West', 'us', 1e9);
		INSERT INTO sla_tiers VALUES ('bronze', 86400, 3600, 0.5), ('gold', 14400, 600, 0.8), ('platinum', 3600, 60, 0.95)`)
	require.NoError(t, err)
	e := echo.New()
	(&Server{Store: s}).Routes(e)
	put := func(path, contentType, body string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPut, path, strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, contentType)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var got map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
		return rec.Code, got
	}
	vinfo, err := os.ReadFile("../inventory/testdata/rvtools-vinfo.csv")
	require.NoError(t, err)

	code, got := put("/inventory?tier=bronze", "text/csv", string(vinfo))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"rows": 3.0, "inserted": 3.0, "updated": 0.0, "unchanged": 0.0}, got)
	code, got = put("/inventory?tier=bronze", "text/csv; charset=utf-8", string(vinfo))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"rows": 3.0, "inserted": 0.0, "updated": 0.0, "unchanged": 3.0}, got)

	code, got = put("/inventory", "application/json",
		`[{"id":"vm-1","name":"one","site":"dc-north","cpu_cores":2,"ram_bytes":1024,"storage_bytes":"lots","sla_tier":"gold"},
		  {"id":"vm-2","name":"two","site":"dc-east","cpu_cores":2,"ram_bytes":1024,"storage_bytes":4096,"sla_tier":"tin"}]`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, []any{map[string]any{"line": 1.0, "column": "storage_bytes", "reason": `"lots" is not a number`}}, got["errors"])
	code, got = put("/inventory", "application/json",
		`[{"id":"vm-1","name":"one","site":"dc-north","cpu_cores":2,"ram_bytes":1024,"storage_bytes":4096,"sla_tier":"gold"},
		  {"id":"vm-2","name":"two","site":"dc-east","cpu_cores":2,"ram_bytes":1024,"storage_bytes":4096,"sla_tier":"tin"}]`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Len(t, got["errors"], 2)
	require.Equal(t, "sla_tier", got["errors"].([]any)[1].(map[string]any)["column"])

	code, _ = put("/inventory", "application/json", `{"id":"vm-1"}`)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = put("/inventory", "application/xml", `<vms/>`)
	require.Equal(t, http.StatusUnsupportedMediaType, code)
}
