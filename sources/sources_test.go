package sources

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntryNormalForm(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/disks":                          "/srv/disks/",
		"/srv/disks/":                         "/srv/disks/",
		"/srv/./disks/../disks":               "/srv/disks/",
		"file:///srv/disks":                   "/srv/disks/",
		"file://localhost/srv/disks/":         "/srv/disks/",
		"https://Images.Example.com":          "https://images.example.com/",
		"https://images.example.com:443/ams1": "https://images.example.com/ams1/",
		"http://10.0.0.5:8080/a/../b/":        "http://10.0.0.5:8080/b/",
	} {
		got, err := Entry(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "/", "/..", "disks", "ftp://host/x", "https://", "https://u:p@host/x", "https://host/x?sig=1",
		"https://host/x#f", "file://nas/srv/disks", "/srv/my disks", "/srv/a\tb"} {
		_, err := Entry(bad)
		require.Error(t, err, bad)
	}
}

func TestCheck(t *testing.T) {
	l, err := Parse([]string{"/srv/disks/ams1", "https://images.example.com/ams1/"})
	require.NoError(t, err)
	for _, ok := range []string{
		"/srv/disks/ams1/vm-1.img",
		"/srv/disks/ams1/deep/vm-1.img",
		"file:///srv/disks/ams1/vm-1.img",
		"https://images.example.com/ams1/vm-1.img",
		"https://IMAGES.example.com:443/ams1/vm-1.img?X-Amz-Signature=abc",
	} {
		require.NoError(t, l.Check(ok), ok)
	}
	for _, outside := range []string{
		"/etc/passwd",
		"/srv/disks/ams1/../fra1/vm-1.img",
		"/srv/disks/ams1-old/vm-1.img",
		"/srv/disks/ams1",
		"file:///etc/passwd",
		"https://images.example.com/fra1/vm-1.img",
		"https://images.example.com/ams1/%2e%2e/fra1/vm-1.img",
		"https://images.example.com/ams1/..%2ffra1/vm-1.img",
		"http://images.example.com/ams1/vm-1.img",
		"https://images.example.com:8443/ams1/vm-1.img",
		"https://images.example.com.evil.net/ams1/vm-1.img",
		"https://169.254.169.254/latest/meta-data/",
	} {
		err := l.Check(outside)
		require.ErrorIs(t, err, ErrOutside, outside)
		require.Contains(t, err.Error(), "/srv/disks/ams1/, https://images.example.com/ams1/", "the error names the list")
	}
	require.NotErrorIs(t, l.Check("disk.img"), ErrOutside)
	require.Error(t, l.Check("disk.img"), "a relative path is refused")
	require.ErrorIs(t, List{}.Check("/srv/disks/ams1/vm-1.img"), ErrOutside, "the zero list allows nothing")
	require.True(t, List{}.Empty())
	require.Equal(t, "none", List{}.String())
}

// A list's entries parse back to the same list, a folder with a space included.
func TestEntriesRoundTrip(t *testing.T) {
	l, err := Parse([]string{"file:///srv/my%20disks", "/srv/disks", "https://nas.example/ams1"})
	require.NoError(t, err)
	again, err := Parse(l.Entries())
	require.NoError(t, err)
	require.Equal(t, l.Entries(), again.Entries())
	require.NoError(t, again.Check("/srv/my disks/vm-1.img"))
	require.NoError(t, again.Check("file:///srv/my%20disks/vm-1.img"))
}

func TestCheckURLRedirectTarget(t *testing.T) {
	l, err := Parse([]string{"http://127.0.0.1:9000/disks/"})
	require.NoError(t, err)
	in, _ := url.Parse("http://127.0.0.1:9000/disks/vm-1.img")
	out, _ := url.Parse("http://127.0.0.1:9001/secret")
	require.NoError(t, l.CheckURL(in))
	require.ErrorIs(t, l.CheckURL(out), ErrOutside)
}

// A link inside an allowed folder that leads outside it is refused; one that stays
// inside is followed.
func TestResolvedFileFollowsLinksOnlyInside(t *testing.T) {
	root, other := t.TempDir(), t.TempDir()
	disk := filepath.Join(root, "vm-1.img")
	secret := filepath.Join(other, "secret")
	require.NoError(t, os.WriteFile(disk, []byte("disk"), 0o600))
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(disk, filepath.Join(root, "alias.img")))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "escape.img")))
	l, err := Parse([]string{root})
	require.NoError(t, err)

	got, err := l.ResolvedFile(filepath.Join(root, "alias.img"))
	require.NoError(t, err)
	real, _ := filepath.EvalSymlinks(disk)
	require.Equal(t, real, got)

	_, err = l.ResolvedFile(filepath.Join(root, "escape.img"))
	require.ErrorIs(t, err, ErrOutside)
	require.NotContains(t, err.Error(), other, "the error does not say where the link leads")

	_, err = l.ResolvedFile(secret)
	require.ErrorIs(t, err, ErrOutside)
	_, err = l.ResolvedFile(filepath.Join(other, "missing"))
	require.ErrorIs(t, err, ErrOutside, "a missing file outside is refused as outside, not as missing")
	_, err = l.ResolvedFile(filepath.Join(root, "missing.img"))
	require.ErrorIs(t, err, os.ErrNotExist, "inside, a missing file is said to be missing")
}

func TestParseBounds(t *testing.T) {
	many := make([]string, MaxEntries+1)
	for i := range many {
		many[i] = "/srv/d"
	}
	_, err := Parse(many)
	require.Error(t, err)
	_, err = Parse([]string{"/srv/a", "relative"})
	require.ErrorContains(t, err, `"relative"`)
	require.False(t, errors.Is(err, ErrOutside))
}
