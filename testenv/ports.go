package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ReservePort looks from reservedLow up to reservedHigh or the start of the kernel's
// ephemeral range (32768 by default), whichever is lower: above the fixed ports of make
// test (17233, and 17433-17539 for cluster mode).
const reservedLow, reservedHigh = 20000, 32768

// ReservePort returns a TCP port on 127.0.0.1 for a server that the test starts in
// another process and that cannot report a port of its own choosing (the Temporal dev
// server, PostgreSQL). Our own processes bind port 0 and say what they got instead.
//
// Picking a free port and letting another process bind it later is a race: in between,
// any process may be given the same port for a port-0 listener or an outgoing
// connection. The kernel hands those out only from its ephemeral range, so the port is
// taken below it; and it is locked (a file lock under the temp folder) until the test
// ends, so that no other test of ours takes it, not even while the test has the server
// stopped for a restart on the same port.
func ReservePort(t testing.TB) int {
	t.Helper()
	low, high := reservedLow, min(reservedHigh, ephemeralLow())
	dir := filepath.Join(os.TempDir(), "pmo-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	start := low + rand.IntN(high-low)
	for i := range high - low {
		port := low + (start-low+i)%(high-low)
		lock, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lock.Close()
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil { // something outside our tests has it
			lock.Close()
			continue
		}
		ln.Close()
		t.Cleanup(func() { lock.Close() })
		return port
	}
	t.Fatalf("testenv: no free port between %d and %d", low, high)
	return 0
}

// ephemeralLow is the start of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return reservedHigh
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > reservedLow+1000 {
			return n
		}
	}
	return reservedHigh
}
