package apikey

import (
	"strings"
	"testing"
)

func TestRolesAllowWhatWeakerRolesAllow(t *testing.T) {
	cases := []struct {
		have, need Role
		ok         bool
	}{
		{Viewer, Viewer, true}, {Viewer, Operator, false}, {Viewer, Admin, false},
		{Operator, Viewer, true}, {Operator, Operator, true}, {Operator, Admin, false},
		{Admin, Viewer, true}, {Admin, Operator, true}, {Admin, Admin, true},
		{"root", Viewer, false}, {Admin, "", false},
	}
	for _, c := range cases {
		if got := c.have.Allows(c.need); got != c.ok {
			t.Errorf("%q allows %q: %v, want %v", c.have, c.need, got, c.ok)
		}
	}
	if _, err := ParseRole("Admin"); err == nil {
		t.Error("roles are lower case")
	}
	if r, err := ParseRole("operator"); err != nil || r != Operator {
		t.Errorf("ParseRole(operator) = %q, %v", r, err)
	}
}

func TestNewKeysAreDistinctAndCarryTheirID(t *testing.T) {
	id, key, hash, err := New()
	if err != nil {
		t.Fatal(err)
	}
	id2, key2, _, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if id == id2 || key == key2 {
		t.Fatal("two keys alike")
	}
	if !strings.HasPrefix(key, Prefix+id+"_") || IDOf(key) != id {
		t.Fatalf("key %q does not show its ID %q", key, id)
	}
	// 256 random bits in unpadded base64url are 43 characters.
	if secret := strings.TrimPrefix(key, Prefix+id+"_"); len(secret) != 43 {
		t.Fatalf("secret %q has %d characters", secret, len(secret))
	}
	if string(hash) != string(Hash(key)) || len(hash) != 32 {
		t.Fatal("the hash is not the key's SHA-256")
	}
	for _, bad := range []string{"", "pmo_", "pmo_xyz_abc", "sk_" + id + "_abc", Prefix + id} {
		if IDOf(bad) != "" {
			t.Errorf("IDOf(%q) = %q", bad, IDOf(bad))
		}
	}
}
