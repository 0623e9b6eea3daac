package sitenet_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/sitenet"
	"github.com/pmo-dev/pmo/testenv"
)

// The test binary, run inside a site's namespace with SITENET_SEND set to an address,
// sends zeros there as fast as it can until killed: a connector's upload, reduced to
// its bytes.
func TestMain(m *testing.M) {
	if addr := os.Getenv("SITENET_SEND"); addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				os.Exit(0)
			}
		}
	}
	os.Exit(m.Run())
}

// sink counts the bytes every connection to it delivers.
func sink(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var got atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					got.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &got
}

// relayedSink is a sink in the cloud (target) and the relay the site reaches it by
// (addr).
func relayedSink(t *testing.T, l *sitenet.Link) (target, addr string, got *atomic.Int64) {
	t.Helper()
	target, got = sink(t)
	addr, err := l.Forward(target)
	require.NoError(t, err)
	return target, addr, got
}

// send starts a sender inside the site's namespace.
func send(t *testing.T, l *sitenet.Link, addr string) {
	t.Helper()
	cmd := l.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SITENET_SEND="+addr)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// rateOver is what the sink received over d, in bytes per second.
func rateOver(got *atomic.Int64, d time.Duration) float64 {
	before := got.Load()
	time.Sleep(d)
	return float64(got.Load()-before) / d.Seconds()
}

func open(t *testing.T, site string, rate float64) *sitenet.Link {
	t.Helper()
	if ok, why := sitenet.Available(); !ok {
		testenv.Unavailable(t, "no site links here: %s", why)
	}
	l, err := sitenet.Open(t.Name(), site, rate, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

// Two senders behind one 4 MiB/s link move at most 4 MiB/s together; the link is the
// bottleneck, so they move close to it; set to 1 MiB/s, they follow.
func TestTwoSendersShareTheirSitesLink(t *testing.T) {
	const mib = 1 << 20
	l := open(t, "ams1", 4*mib)
	_, addr, got := relayedSink(t, l)
	require.True(t, strings.HasPrefix(addr, l.CloudIP+":"), addr)
	send(t, l, addr)
	send(t, l, addr)

	time.Sleep(time.Second) // past the first burst
	rate := rateOver(got, 4*time.Second)
	t.Logf("two senders behind a 4 MiB/s link: %.2f MiB/s together", rate/mib)
	require.LessOrEqual(t, rate, 4.2*mib, "at most the link's rate")
	require.Greater(t, rate, 3.0*mib, "the link, not the senders, is what holds them back")

	require.NoError(t, l.SetRate(1*mib))
	time.Sleep(time.Second)
	rate = rateOver(got, 3*time.Second)
	t.Logf("at 1 MiB/s: %.2f MiB/s", rate/mib)
	require.LessOrEqual(t, rate, 1.1*mib)
	require.Greater(t, rate, 0.7*mib)
}

// A cut link carries nothing; restored, the same connections go on.
func TestACutLinkCarriesNothingUntilRestored(t *testing.T) {
	const mib = 1 << 20
	l := open(t, "fra1", 2*mib)
	_, addr, got := relayedSink(t, l)
	send(t, l, addr)
	time.Sleep(time.Second)
	require.Positive(t, rateOver(got, time.Second))

	require.NoError(t, l.Down())
	time.Sleep(500 * time.Millisecond) // what was in flight lands
	require.Zero(t, rateOver(got, 2*time.Second), "nothing crosses a cut link")

	require.NoError(t, l.Up())
	require.Eventually(t, func() bool { return rateOver(got, 500*time.Millisecond) > 0 }, 20*time.Second, 100*time.Millisecond,
		"the sender's one connection goes on once the link is back")
}

// The site reaches the cloud only through its link's forwarders: the cloud's loopback
// services are not the site's.
func TestASiteReachesTheCloudOnlyThroughItsForwarders(t *testing.T) {
	l := open(t, "lon1", 0)
	target, _ := sink(t)
	_, port, _ := net.SplitHostPort(target)
	out, err := l.Command(context.Background(), "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+port).CombinedOutput()
	require.Error(t, err, "the cloud's loopback is not reachable from the site: %s", out)
	addr, err := l.Forward(target)
	require.NoError(t, err)
	host, fport, _ := net.SplitHostPort(addr)
	out, err = l.Command(context.Background(), "bash", "-c", "exec 3<>/dev/tcp/"+host+"/"+fport).CombinedOutput()
	require.NoError(t, err, "the forwarder is: %s", out)
}

// A worker started again takes its sites' links over as they are, with the
// connectors in them, and relays on the addresses those connectors were given.
func TestALinkOpenedAgainIsTakenOverWithItsAddresses(t *testing.T) {
	l := open(t, "par1", 1<<20)
	target, addr, got := relayedSink(t, l)
	send(t, l, addr)
	require.Eventually(t, func() bool { return got.Load() > 0 }, 10*time.Second, 50*time.Millisecond)
	l.StopRelays() // the worker stops; the sender's namespace stays

	again, err := sitenet.Open(t.Name(), "par1", 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, l.Namespace, again.Namespace)
	require.Equal(t, l.CloudIP, again.CloudIP)
	addr2, err := again.Forward(target)
	require.NoError(t, err)
	require.Equal(t, addr, addr2, "the same address for the same service")
	t.Cleanup(again.StopRelays)
	before := got.Load()
	send(t, again, addr2) // a connector that dials again after the restart
	require.Eventually(t, func() bool { return got.Load() > before }, 10*time.Second, 50*time.Millisecond)
}
