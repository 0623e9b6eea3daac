package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/platform"
)

// With PMO_PAYLOAD_KEY set, every process encrypts what it puts in Temporal: a
// migration runs as usual, its history read without the key holds no plaintext, and
// the web server's codec endpoint gives the payloads back, as the Temporal CLI and the
// Web UI ask for them, to a viewer's key and to nobody without one.
func TestPayloadsAreEncryptedAndTheCodecEndpointDecodesThem(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	s := startSystem(t, "PMO_PAYLOAD_KEY="+base64.StdEncoding.EncodeToString(key))
	db := s.connect()
	vms, disks := s.vmsBySize(db, "ams1", 1, false)
	vm, disk := vms[0], disks[0]

	var scaled struct {
		Connectors []struct{ ID string } `json:"connectors"`
	}
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "provision", "site": "ams1", "count": 1, "who": "e2e", "why": "encrypted run"}, &scaled))
	s.waitWarm(scaled.Connectors[0].ID)
	id := "sealed-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vm}, nil))
	var v migrationView
	s.eventually(2*time.Minute, id+" is done", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "succeeded", v.Outcome, "%+v", v)
	require.Equal(t, fileSHA(t, disk), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)))

	// Read without the key, as anyone with access to Temporal would.
	raw, err := client.Dial(client.Options{HostPort: s.temporal, Namespace: s.namespace})
	require.NoError(t, err)
	defer raw.Close()
	var input, result *commonpb.Payload
	payloads := 0
	it := raw.GetWorkflowHistory(context.Background(), "migration-"+id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		b, err := proto.Marshal(ev)
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, []byte(vm)), "event %d (%s) shows the VM's ID in plain text", ev.GetEventId(), ev.GetEventType())
		payloads += checkEncrypted(t, ev)
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			input = a.GetInput().GetPayloads()[0]
		}
		if a := ev.GetWorkflowExecutionCompletedEventAttributes(); a != nil {
			result = a.GetResult().GetPayloads()[0]
		}
	}
	require.NotNil(t, input)
	require.NotNil(t, result)
	require.Greater(t, payloads, 4, "activity inputs and results are encrypted too")

	// The codec endpoint decodes them for a viewer, and for nobody without a key.
	viewer := s.createKey("codec viewer", "viewer")
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{input, result}})
	require.NoError(t, err)
	var p problem
	require.Equal(t, 401, s.sendAs("", "POST", "/codec/decode", "application/json", bytes.NewReader(body), &p))
	decoded := s.codec(viewer, "/codec/decode", body)
	require.Len(t, decoded.GetPayloads(), 2)
	for _, d := range decoded.GetPayloads() {
		require.Equal(t, "json/plain", string(d.GetMetadata()[converter.MetadataEncoding]))
	}
	require.Contains(t, string(decoded.GetPayloads()[0].GetData()), vm, "the input names the VM")
	require.Contains(t, string(decoded.GetPayloads()[1].GetData()), "succeeded")

	// Encoding is for operators; what it makes decodes back.
	plain, err := protojson.Marshal(decoded)
	require.NoError(t, err)
	require.Equal(t, 403, s.sendAs(viewer, "POST", "/codec/encode", "application/json", bytes.NewReader(plain), &p))
	encoded := s.codec(s.key, "/codec/encode", plain)
	require.Equal(t, platform.EncodingEncrypted, string(encoded.GetPayloads()[0].GetMetadata()[converter.MetadataEncoding]))
	again, err := protojson.Marshal(encoded)
	require.NoError(t, err)
	require.True(t, proto.Equal(decoded, s.codec(viewer, "/codec/decode", again)))
	require.Equal(t, 400, s.sendAs(viewer, "POST", "/codec/decode", "application/json", strings.NewReader(`{"payloads": 1}`), &p))

	// The browser's preflight from the Web UI needs no key and allows the headers the
	// UI sends; another origin is not allowed.
	pre := func(origin string) *http.Response {
		req, err := http.NewRequest(http.MethodOptions, s.api+"/codec/decode", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := pre("http://127.0.0.1:8233") // TEMPORAL_UI_URL's default
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, "http://127.0.0.1:8233", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization")
	require.Empty(t, pre("http://evil.example").Header.Get("Access-Control-Allow-Origin"))

	// The Web UI cannot send a PMO key, so an operator runs `starter codec-proxy` with
	// theirs and points the UI at it; it answers the UI's origin only.
	proxyLogPath := filepath.Join(s.dataDir, "codec-proxy.log")
	proxyLog, err := os.Create(proxyLogPath)
	require.NoError(t, err)
	defer proxyLog.Close()
	proxy := exec.Command(filepath.Join(s.bin, "starter"), "codec-proxy", "-listen", "127.0.0.1:0", "-api", s.api)
	proxy.Env = append(s.env, "PMO_API_KEY="+viewer)
	proxy.Stdout, proxy.Stderr = proxyLog, proxyLog
	require.NoError(t, proxy.Start())
	t.Cleanup(func() { _ = proxy.Process.Kill(); _ = proxy.Wait() })
	proxyAddr := s.listening(proxy, proxyLogPath, 0, "codec proxy listening")
	viaProxy := func(origin string) (int, *commonpb.Payloads) {
		var resp *http.Response
		s.eventually(10*time.Second, "the codec proxy answers", func() bool {
			req, err := http.NewRequest(http.MethodPost, "http://"+proxyAddr+"/decode", bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", origin)
			resp, err = http.DefaultClient.Do(req)
			return err == nil
		})
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err := buf.ReadFrom(resp.Body)
		require.NoError(t, err)
		var out commonpb.Payloads
		t.Logf("codec proxy, origin %s: %d %s", origin, resp.StatusCode, tail(buf.String(), 300))
		if resp.StatusCode == 200 {
			require.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))
			require.NoError(t, protojson.Unmarshal(buf.Bytes(), &out))
		}
		return resp.StatusCode, &out
	}
	status, viaUI := viaProxy("http://127.0.0.1:8233")
	proxyOut, _ := os.ReadFile(proxyLogPath)
	require.Equal(t, 200, status, "%s", proxyOut)
	require.True(t, proto.Equal(decoded, viaUI))
	status, _ = viaProxy("http://evil.example")
	require.Equal(t, 403, status)
	req, err := http.NewRequest(http.MethodOptions, "http://"+proxyAddr+"/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, "http://127.0.0.1:8233", resp.Header.Get("Access-Control-Allow-Origin"))

	// The Temporal CLI, a real codec client, shows the history decoded through PMO.
	started := func(args ...string) *commonpb.Payload {
		cmd := exec.Command(filepath.Join(repoRoot(t), ".bin", "temporal"), append([]string{"workflow", "show",
			"--address", s.temporal, "--namespace", s.namespace, "-w", "migration-" + id, "-o", "json"}, args...)...)
		out, err := cmd.Output()
		require.NoError(t, err, "%s", out)
		var h historypb.History
		require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(out, &h))
		require.NotEmpty(t, h.GetEvents())
		return h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	}
	require.Equal(t, platform.EncodingEncrypted, string(started().GetMetadata()[converter.MetadataEncoding]))
	require.Contains(t, string(started("--codec-endpoint", s.api+"/codec", "--codec-auth", "Bearer "+viewer).GetData()), vm)

	// The encrypted histories replay with the key.
	s.replayHistories(map[string]string{"encrypted-migration": "migration-" + id, "encrypted-fleet": "fleet-" + s.pool})
}

// checkEncrypted fails unless every payload of the event's attributes is encrypted,
// and returns how many there are.
func checkEncrypted(t *testing.T, ev *historypb.HistoryEvent) int {
	t.Helper()
	var found []*commonpb.Payload
	for _, ps := range []*commonpb.Payloads{
		ev.GetWorkflowExecutionStartedEventAttributes().GetInput(),
		ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(),
		ev.GetActivityTaskScheduledEventAttributes().GetInput(),
		ev.GetActivityTaskCompletedEventAttributes().GetResult(),
		ev.GetWorkflowExecutionSignaledEventAttributes().GetInput(),
		ev.GetMarkerRecordedEventAttributes().GetDetails()["data"],
	} {
		found = append(found, ps.GetPayloads()...)
	}
	for _, p := range found {
		require.Equal(t, platform.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]),
			"event %d (%s) has a payload that is not encrypted", ev.GetEventId(), ev.GetEventType())
	}
	return len(found)
}

// codec posts payloads to a codec endpoint with a key and returns the answer's.
func (s *system) codec(key, path string, body []byte) *commonpb.Payloads {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.api+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Namespace", s.namespace)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	var out commonpb.Payloads
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(s.t, err)
	require.Equal(s.t, 200, resp.StatusCode, "%s %s", path, buf.String())
	require.NoError(s.t, protojson.Unmarshal(buf.Bytes(), &out))
	return &out
}

// config is the settings the system's processes get, for the test's own client.
func (s *system) config() config.Config {
	s.t.Helper()
	cfg, err := config.Load()
	require.NoError(s.t, err)
	cfg.TemporalAddress, cfg.TemporalNamespace = s.temporal, s.namespace
	cfg.PayloadKeys.Current = s.getenv("PMO_PAYLOAD_KEY")
	return cfg
}

// dialTemporal connects to the system's namespace as its processes do
// (platform.DialTemporal), so that the test reads what they write, encrypted or not.
// The client is closed when the test ends.
func (s *system) dialTemporal() client.Client {
	s.t.Helper()
	c, err := platform.DialTemporal(s.config(), slog.New(slog.DiscardHandler))
	require.NoError(s.t, err)
	s.t.Cleanup(c.Close)
	return c
}
