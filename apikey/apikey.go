// Package apikey makes PMO's API keys and says what each role may do. It is plain Go:
// the store keeps the keys' hashes, the web server checks them, the starter makes them.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Role is what a key may do. Each role may do what the roles before it may.
type Role string

// The roles, weakest first.
const (
	// Viewer reads: every GET.
	Viewer Role = "viewer"
	// Operator runs the migrations and the fleet: submits, controls, overrides,
	// scales, records events, imports files, forecasts and simulates.
	Operator Role = "operator"
	// Admin also changes the scaling policy; keys are made and revoked with the
	// starter, which needs the database, not a key.
	Admin Role = "admin"
)

// Roles lists the roles, weakest first.
var Roles = []Role{Viewer, Operator, Admin}

// Connector is the role of one external connector's key (an appliance at a customer's
// site): it may only post that connector's metrics. It is outside the order of Roles:
// it allows nothing they allow, and they do not allow it.
const Connector Role = "connector"

// ParseRole returns the role named s, or an error that lists the roles.
func ParseRole(s string) (Role, error) {
	for _, r := range append(Roles, Connector) {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want viewer, operator, admin or connector", s)
}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return -1
}

// Allows reports whether a key with role r may do what needs role need. An unknown
// role allows nothing.
func (r Role) Allows(need Role) bool {
	return r.rank() >= 0 && need.rank() >= 0 && r.rank() >= need.rank()
}

// Prefix starts every key, so that secret scanners and people can tell a PMO key.
const Prefix = "pmo_"

// secretBytes is the key's random part: 256 bits.
const secretBytes = 32

// New makes a key: its ID (shown in lists and audit rows, and the key's visible
// prefix), the key itself (shown once) and the hash to store.
func New() (id, key string, hash []byte, err error) {
	b := make([]byte, 6+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", nil, fmt.Errorf("apikey: random: %w", err)
	}
	id = hex.EncodeToString(b[:6])
	key = Prefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[6:])
	return id, key, Hash(key), nil
}

// Hash is the SHA-256 of the whole key. A key is 256 random bits, so a fast unsalted
// hash is enough: no one can guess a key from its hash, and a slow password hash such
// as bcrypt would cost tens of milliseconds of CPU on every request for nothing, which
// anyone could use to load the server. Looking the hash up by equality also means no
// secret is compared byte by byte in Go.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Display is how a key is shown once made: its prefix and ID, never its secret.
func Display(id string) string { return Prefix + id + "_…" }

// IDOf returns the ID a key claims, for logs; it is "" when the key is not in PMO's
// form. The claim means nothing until the key's hash is found.
func IDOf(key string) string {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 12 {
		return ""
	}
	if _, err := hex.DecodeString(id); err != nil {
		return ""
	}
	return id
}
