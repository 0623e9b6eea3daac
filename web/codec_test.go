package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store/storetest"
)

// codecServer is the API with a payload codec, its keys in a private database, and an
// admin's Authorization header.
func codecServer(t testing.TB) (*echo.Echo, string) {
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	pc, err := platform.NewPayloadCodec(key)
	require.NoError(t, err)
	st := storetest.New(t)
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	(&Server{Store: st, Pool: "default", Logger: slog.New(slog.DiscardHandler), Codec: pc, UIURL: "http://127.0.0.1:8233", RateLimit: unlimited}).Routes(e)
	return e, "Bearer " + adminKey(t, st)
}

func postCodec(e *echo.Echo, authorization, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	req.Header.Set(echo.HeaderAuthorization, authorization)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// The codec endpoints round-trip payloads, and refuse a body that is too large, not
// payloads, or not decryptable with a problem that says so.
func TestCodecEndpointsRoundTripAndRefuseBadBodies(t *testing.T) {
	e, admin := codecServer(t)
	plain, err := converter.GetDefaultDataConverter().ToPayloads("vm-0042", 42)
	require.NoError(t, err)
	body, err := protojson.Marshal(plain)
	require.NoError(t, err)

	rec := postCodec(e, admin, codecEncodePath, body)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.NotContains(t, rec.Body.String(), "vm-0042")
	var sealed commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), &sealed))
	rec = postCodec(e, admin, codecDecodePath, rec.Body.Bytes())
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var opened commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), &opened))
	require.True(t, proto.Equal(plain, &opened))

	// Another server, another key: its payloads do not decrypt here.
	other, otherAdmin := codecServer(t)
	foreign := postCodec(other, otherAdmin, codecEncodePath, body)
	require.Equal(t, 200, foreign.Code)
	for _, tc := range []struct {
		body   []byte
		status int
		detail string
	}{
		{[]byte(`{"payloads":[{"data":"` + strings.Repeat("A", maxBody) + `"}]}`), http.StatusRequestEntityTooLarge, "larger than"},
		{[]byte(`{"payloads": 1}`), http.StatusBadRequest, "must be Temporal payloads as JSON"},
		{[]byte(`not json`), http.StatusBadRequest, "must be Temporal payloads as JSON"},
		{foreign.Body.Bytes(), http.StatusUnprocessableEntity, "neither PMO_PAYLOAD_KEY nor in PMO_PAYLOAD_KEYS_OLD"},
	} {
		rec := postCodec(e, admin, codecDecodePath, tc.body)
		require.Equal(t, tc.status, rec.Code, rec.Body.String())
		require.Equal(t, "application/problem+json", rec.Header().Get(echo.HeaderContentType))
		var p Problem
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		require.Contains(t, p.Detail, tc.detail)
	}
}

// Whatever is posted to the decode endpoint, the answer is payloads or a 4xx problem,
// never a crash or a 500.
func FuzzCodecDecode(f *testing.F) {
	e, admin := codecServer(f)
	f.Add([]byte(`{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA=="},"data":"AAAA"}]}`))
	f.Add([]byte(`{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-key-id":"MDA="},"data":""}]}`))
	f.Add([]byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := postCodec(e, admin, codecDecodePath, body)
		if rec.Code == http.StatusOK {
			var out commonpb.Payloads
			if err := protojson.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("200 with a body that is not payloads: %v", err)
			}
			return
		}
		if rec.Code < 400 || rec.Code >= 500 || rec.Header().Get(echo.HeaderContentType) != "application/problem+json" {
			t.Fatalf("%q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}
