package platform

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/testenv"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for name signed by the CA, and its key, both PEM.
func (ca testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// tlsFrontend stands where Temporal Cloud or a TLS-terminating load balancer would: it
// speaks TLS (HTTP/2, as gRPC needs) to the client and plain HTTP/2 to the dev server,
// whose CLI has no TLS options. With clientCAs it demands a client certificate signed
// by them; with apiKey it refuses, as UNAUTHENTICATED, a call without that bearer
// token. It records the client certificate name and the authorization of each call.
type tlsFrontend struct {
	addr string

	mu      sync.Mutex
	callers []string // client certificate common names, "" when none
}

func startTLSFrontend(t *testing.T, temporal string, serverCert tls.Certificate, clientCAs *x509.CertPool, apiKey string) *tlsFrontend {
	t.Helper()
	f := &tlsFrontend{}
	h2c := &http.Protocols{}
	h2c.SetUnencryptedHTTP2(true)
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: temporal}) },
		Transport:     &http.Transport{Protocols: h2c},
		FlushInterval: -1,
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		f.mu.Lock()
		f.callers = append(f.callers, name)
		f.mu.Unlock()
		if apiKey != "" && r.Header.Get("Authorization") != "Bearer "+apiKey {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "16") // UNAUTHENTICATED
			w.Header().Set("Grpc-Message", "no valid API key")
			w.WriteHeader(http.StatusOK)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some cases test
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	if clientCAs != nil {
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = strings.TrimPrefix(srv.URL, "https://")
	return f
}

// calls is how many calls got through the handshake.
func (f *tlsFrontend) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.callers)
}

// lastCaller is the client certificate name of the latest call.
func (f *tlsFrontend) lastCaller(t *testing.T) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.callers, "no call reached the TLS frontend")
	return f.callers[len(f.callers)-1]
}

// DialTemporal reaches Temporal over TLS, over mTLS and with an API key, as the
// TEMPORAL_TLS_* and TEMPORAL_API_KEY variables say, and fails with the reason when
// the server cannot be trusted or the client is not let in.
func TestDialTemporalSpeaksTLSAndMTLSAndSendsTheAPIKey(t *testing.T) {
	temporal := testenv.TemporalAddress(t)
	dir := t.TempDir()
	serverCA, clientCA := newTestCA(t, "pmo test server CA"), newTestCA(t, "pmo test client CA")
	serverCertPEM, serverKeyPEM := serverCA.issue(t, "temporal.test", x509.ExtKeyUsageServerAuth)
	serverCert, err := tls.X509KeyPair(serverCertPEM, serverKeyPEM)
	require.NoError(t, err)
	clientCertPEM, clientKeyPEM := clientCA.issue(t, "pmo-worker", x509.ExtKeyUsageClientAuth)
	caFile := writeFile(t, dir, "server-ca.pem", serverCA.pem)
	certFile, keyFile := writeFile(t, dir, "client.pem", clientCertPEM), writeFile(t, dir, "client-key.pem", clientKeyPEM)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.cert)

	plain := startTLSFrontend(t, temporal, serverCert, nil, "")
	mutual := startTLSFrontend(t, temporal, serverCert, clientCAs, "")
	cloud := startTLSFrontend(t, temporal, serverCert, nil, "pmo-cloud-key")

	logger := slog.New(slog.DiscardHandler)
	dial := func(addr string, tlsCfg config.TemporalTLS) error {
		cfg := config.Config{TemporalAddress: addr, TemporalNamespace: "default", TemporalTLS: tlsCfg}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := DialTemporal(cfg, logger)
		if err != nil {
			return err
		}
		defer c.Close()
		// A call that reaches the dev server's namespace, not only the frontend.
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		return err
	}

	t.Run("TLS with the server's CA", func(t *testing.T) {
		require.NoError(t, dial(plain.addr, config.TemporalTLS{CA: caFile, ServerName: "temporal.test"}))
		require.Equal(t, "", plain.lastCaller(t))
	})
	t.Run("TLS with the system roots does not trust a private CA", func(t *testing.T) {
		err := dial(plain.addr, config.TemporalTLS{Enabled: true, ServerName: "temporal.test"})
		require.ErrorContains(t, err, "certificate signed by unknown authority")
	})
	t.Run("TLS checks the server's name", func(t *testing.T) {
		// The certificate names temporal.test; the address is 127.0.0.1.
		err := dial(plain.addr, config.TemporalTLS{CA: caFile})
		require.ErrorContains(t, err, "certificate for 127.0.0.1")
	})
	t.Run("mTLS sends the client certificate", func(t *testing.T) {
		require.NoError(t, dial(mutual.addr, config.TemporalTLS{Cert: certFile, Key: keyFile, CA: caFile, ServerName: "temporal.test"}))
		require.Equal(t, "pmo-worker", mutual.lastCaller(t))
	})
	t.Run("mTLS without a client certificate is refused", func(t *testing.T) {
		// Under TLS 1.3 the refusal comes after the client's handshake ends, so the
		// client's error varies (certificate required, broken pipe); what matters is
		// that no call got through.
		calls := mutual.calls()
		err := dial(mutual.addr, config.TemporalTLS{CA: caFile, ServerName: "temporal.test"})
		require.ErrorContains(t, err, "connect to Temporal at "+mutual.addr)
		require.Equal(t, calls, mutual.calls(), "a call got through without a client certificate")
	})
	t.Run("the API key is sent as a bearer token over TLS", func(t *testing.T) {
		require.NoError(t, dial(cloud.addr, config.TemporalTLS{APIKey: "pmo-cloud-key", CA: caFile, ServerName: "temporal.test"}))
		require.ErrorContains(t, dial(cloud.addr, config.TemporalTLS{APIKey: "another-key", CA: caFile, ServerName: "temporal.test"}), "no valid API key")
	})
	t.Run("plain text does not reach a TLS frontend", func(t *testing.T) {
		err := dial(plain.addr, config.TemporalTLS{})
		require.ErrorContains(t, err, "connect to Temporal at "+plain.addr)
	})
}
