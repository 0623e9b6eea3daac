// Package sitenet puts a site behind a network link of its own. A site is a network
// namespace joined to the cloud side (the host's own namespace, where Temporal,
// PostgreSQL, the object store and PMO's worker run) by a veth pair. The site's end of
// the pair is shaped with tbf to the site's uplink rate, so whatever the site sends to
// the cloud (its connectors' uploads above all) shares that rate, as it would over a
// real WAN link. What runs at the site runs inside the namespace (Link.Command) and
// reaches the cloud's services through forwarders on the cloud's end of the link
// (Link.Forward): the services keep listening on loopback, and every byte between
// them and the site crosses the link. Cutting the link (Link.Down) is pulling the
// site's cable.
//
// It needs CAP_NET_ADMIN (root) and the ip and tc commands of iproute2.
package sitenet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Link is one site's namespace and its shaped link to the cloud.
type Link struct {
	// Site is the site the link serves.
	Site string
	// Namespace is the network namespace's name.
	Namespace string
	// CloudIP is the cloud's end of the link, SiteIP the site's; the site's default
	// route goes to CloudIP.
	CloudIP, SiteIP string
	// tag is the caller's, which named the link; cloudDev and siteDev are the veth
	// pair's ends.
	tag, cloudDev, siteDev string
	logger                 *slog.Logger

	mu     sync.Mutex
	relays map[string]net.Listener // by target
	rate   float64
}

// Available says whether links can be made here, and if not, why.
func Available() (bool, string) {
	for _, cmd := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return false, cmd + " (iproute2) is not installed"
		}
	}
	if os.Geteuid() != 0 {
		return false, "network namespaces need root (CAP_NET_ADMIN)"
	}
	return true, ""
}

// Open makes the namespace of a site and its link, with the cloud's end at
// 10.<a>.<b>.1 and the site's at 10.<a>.<b>.2, where a and b come from a hash of tag
// and site, and shapes the site's uploads to bytesPerSec (0: unshaped). tag keeps two
// callers' links apart (a test's name, a pool). A link that is up already, the same
// tag's and site's from an earlier process, is taken over as it is, so that the
// connectors in it (which outlive a worker) keep their addresses; one left half made
// is made afresh.
func Open(tag, site string, bytesPerSec float64, logger *slog.Logger) (*Link, error) {
	if logger == nil {
		logger = slog.Default()
	}
	l := named(tag, site)
	l.logger = logger
	if run("ip", "-n", l.Namespace, "addr", "show", "dev", l.siteDev) == nil && run("ip", "addr", "show", "dev", l.cloudDev) == nil {
		if err := l.SetRate(bytesPerSec); err != nil {
			return nil, err
		}
		logger.Info("site link taken over", "site", site, "namespace", l.Namespace, "cloud_ip", l.CloudIP, "site_ip", l.SiteIP)
		return l, nil
	}
	_ = Remove(tag, site)
	steps := [][]string{
		{"ip", "netns", "add", l.Namespace},
		{"ip", "link", "add", l.cloudDev, "type", "veth", "peer", "name", l.siteDev},
		{"ip", "link", "set", l.siteDev, "netns", l.Namespace},
		{"ip", "addr", "add", l.CloudIP + "/30", "dev", l.cloudDev},
		{"ip", "link", "set", l.cloudDev, "up"},
		{"ip", "-n", l.Namespace, "addr", "add", l.SiteIP + "/30", "dev", l.siteDev},
		{"ip", "-n", l.Namespace, "link", "set", l.siteDev, "up"},
		{"ip", "-n", l.Namespace, "link", "set", "lo", "up"},
		{"ip", "-n", l.Namespace, "route", "add", "default", "via", l.CloudIP},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	if err := l.SetRate(bytesPerSec); err != nil {
		_ = l.Close()
		return nil, err
	}
	logger.Info("site link up", "site", site, "namespace", l.Namespace, "cloud_ip", l.CloudIP, "site_ip", l.SiteIP,
		"uplink_bytes_per_sec", bytesPerSec)
	return l, nil
}

// named is tag's link of the site as its names and addresses are, whether it is up
// or not. Interface names have at most 15 bytes: a hash of tag and site keeps them
// short and apart, and picks the addresses.
func named(tag, site string) *Link {
	h := sha256.Sum256([]byte(tag + "\x00" + site))
	id := hex.EncodeToString(h[:])[:8]
	n := int(h[8])<<8 | int(h[9])
	return &Link{Site: site, Namespace: "pmo-" + id, tag: tag, cloudDev: "pmoc" + id, siteDev: "pmos" + id,
		CloudIP: fmt.Sprintf("10.%d.%d.1", 200+n>>8&0x1f, n&0xff), SiteIP: fmt.Sprintf("10.%d.%d.2", 200+n>>8&0x1f, n&0xff)}
}

// SetRate shapes what the site sends to bytesPerSec with a token bucket (tbf); 0
// removes the shaping.
func (l *Link) SetRate(bytesPerSec float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytesPerSec <= 0 {
		_ = run("ip", "netns", "exec", l.Namespace, "tc", "qdisc", "del", "dev", l.siteDev, "root")
		l.rate = 0
		return nil
	}
	// A burst of a fiftieth of a second's bytes keeps the rate smooth, but never less
	// than 128 KiB: the veth hands tbf segmentation-offloaded packets of up to 64 KiB,
	// and tbf drops a packet larger than its burst. Packets wait at most 200 ms for
	// tokens before they are dropped, and TCP backs off.
	burst := max(int64(bytesPerSec/50), 128<<10)
	// change keeps what is queued; replace would drop it, and TCP would stall for
	// its retransmission timeouts.
	verb := "replace"
	if l.rate > 0 {
		verb = "change"
	}
	err := run("ip", "netns", "exec", l.Namespace, "tc", "qdisc", verb, "dev", l.siteDev, "root", "tbf",
		"rate", strconv.FormatInt(int64(bytesPerSec*8), 10)+"bit", "burst", strconv.FormatInt(burst, 10), "latency", "200ms")
	if err == nil {
		l.rate = bytesPerSec
	}
	return err
}

// Rate is the site's uplink rate in bytes per second; 0 is unshaped.
func (l *Link) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// Down cuts the link: neither end carries anything until Up.
func (l *Link) Down() error {
	l.logger.Warn("site link cut", "site", l.Site)
	return run("ip", "link", "set", l.cloudDev, "down")
}

// Up restores a cut link; connections that outlived the cut go on.
func (l *Link) Up() error {
	if err := run("ip", "link", "set", l.cloudDev, "up"); err != nil {
		return err
	}
	// The site's end went down with its peer; bring it up in case it stays down.
	err := run("ip", "-n", l.Namespace, "link", "set", l.siteDev, "up")
	l.logger.Info("site link restored", "site", l.Site)
	return err
}

// Forward makes a service of the cloud that listens on loopback (target, host:port)
// reachable from the site: it listens on the cloud's end of the link, on target's
// port, and relays each connection to target. It returns the address the site dials,
// the same from any process that opens the link: a worker started again relays on
// the addresses its connectors were given. Forwarding a target again returns the
// relay there is.
func (l *Link) Forward(target string) (string, error) {
	_, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", fmt.Errorf("sitenet: forward %s: %w", target, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.relays[target]; ok {
		return ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(l.CloudIP, port))
	if err != nil {
		return "", fmt.Errorf("sitenet: forward %s to site %s: %w", target, l.Site, err)
	}
	if l.relays == nil {
		l.relays = map[string]net.Listener{}
	}
	l.relays[target] = ln
	go relay(ln, target)
	return ln.Addr().String(), nil
}

// relay copies each accepted connection to and from a new connection to target.
func relay(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		go func() {
			defer c.Close()
			t, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer t.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				// Half-close, so that the other side sees the end of what was sent.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(t, c)
			go pipe(c, t)
			<-done
			<-done
		}()
	}
}

// Command is a command to run inside the site's namespace.
func (l *Link) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Namespace, name}, args...)...)
}

// Close stops the relays and removes the namespace, and with it the link.
func (l *Link) Close() error {
	l.StopRelays()
	return Remove(l.tag, l.Site)
}

// StopRelays stops relaying, leaving the namespace and the link: what a worker does
// as it stops, since its connectors outlive it.
func (l *Link) StopRelays() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.relays {
		_ = ln.Close()
	}
	l.relays = nil
}

// Remove removes the namespace and link of tag's site, if there are any.
func Remove(tag, site string) error {
	l := named(tag, site)
	var err error
	if e := run("ip", "netns", "del", l.Namespace); e != nil && !strings.Contains(e.Error(), "No such file") {
		err = e
	}
	// Deleting the namespace deletes its end of the pair, and so the pair.
	if e := run("ip", "link", "del", l.cloudDev); e != nil && !strings.Contains(e.Error(), "Cannot find device") {
		err = errors.Join(err, e)
	}
	return err
}

// run runs an iproute2 command, its output in the error when it fails.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sitenet: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
