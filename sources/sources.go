// Package sources holds a site's allow-list of where its disk images may be read:
// storage roots (absolute folders) and URL prefixes. The web server checks a
// migration's source against its site's list before anything starts, and a connector
// checks it again, with its own list, before it opens anything, so that a key that may
// start a migration cannot make a connector read an arbitrary file or fetch an
// arbitrary URL.
package sources

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"unicode"
)

// ErrOutside is a source that is not under any entry of the list. Its message names
// the source and the list, never whether the source exists.
var ErrOutside = errors.New("not under the allowed sources")

// MaxEntries bounds a site's list, and MaxEntryLength each entry.
const (
	MaxEntries     = 64
	MaxEntryLength = 512
)

// List is a parsed allow-list. The zero List allows nothing.
type List struct {
	// folders are absolute, cleaned and end in "/"; prefixes are URLs whose path ends
	// in "/".
	folders  []string
	prefixes []*url.URL
}

// Parse reads a list's entries (see Entry); a bad entry is an error naming it.
func Parse(entries []string) (List, error) {
	if len(entries) > MaxEntries {
		return List{}, fmt.Errorf("%d entries; at most %d", len(entries), MaxEntries)
	}
	var l List
	for _, e := range entries {
		dir, u, err := entry(e)
		if err != nil {
			return List{}, err
		}
		if u != nil {
			l.prefixes = append(l.prefixes, u)
		} else {
			l.folders = append(l.folders, dir)
		}
	}
	return l, nil
}

// Entry checks one entry and returns its normal form: an absolute folder
// ("/srv/disks/"; a file:// URL naming one is the same, and a folder whose name has a
// space is written as a file:// URL with %20), or an http or https URL prefix with no
// user, query or fragment ("https://images.example.com:8443/ams1/"). A folder's or
// prefix's path always ends in "/", so "/srv/disks" does not allow "/srv/disks-old".
// The root folder is refused: it would allow every file.
func Entry(e string) (string, error) {
	dir, u, err := entry(e)
	if err != nil {
		return "", err
	}
	if u != nil {
		return u.String(), nil
	}
	return folderEntry(dir), nil
}

// entry parses an entry as a folder, cleaned and ending in "/", or a URL prefix.
func entry(e string) (string, *url.URL, error) {
	if e == "" || len(e) > MaxEntryLength {
		return "", nil, fmt.Errorf("entry %q must be 1 to %d bytes", e, MaxEntryLength)
	}
	if strings.ContainsFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		// Entries are separated by spaces in a file.
		return "", nil, fmt.Errorf("entry %q must have no space or control character (write a folder with spaces as a file:// URL with %%20)", e)
	}
	if strings.HasPrefix(e, "file://") {
		p, err := FilePath(e)
		if err != nil {
			return "", nil, fmt.Errorf("entry %q: %v", e, err)
		}
		e = p
	}
	if strings.HasPrefix(e, "/") {
		dir := filepath.Clean(e)
		if dir == "/" {
			return "", nil, fmt.Errorf("entry %q is the root folder, which would allow every file; name the folders that hold disk images", e)
		}
		return dir + "/", nil, nil
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("entry %q must be an absolute folder or an http or https URL prefix", e)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", nil, fmt.Errorf("entry %q must have no user, query or fragment", e)
	}
	return "", prefix(u), nil
}

// folderEntry writes a folder as an entry: as it is, or as a file:// URL where its
// name has a character that cannot stand in a list separated by spaces.
func folderEntry(dir string) string {
	if strings.ContainsFunc(dir, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return (&url.URL{Scheme: "file", Path: dir}).String()
	}
	return dir
}

// prefix is u's normal form as a list entry: lower-case host without its scheme's
// default port, and a cleaned path ending in "/".
func prefix(u *url.URL) *url.URL {
	p := &url.URL{Scheme: u.Scheme, Host: host(u), Path: cleanURLPath(u.Path)}
	if !strings.HasSuffix(p.Path, "/") {
		p.Path += "/"
	}
	return p
}

// Empty reports whether the list allows nothing.
func (l List) Empty() bool { return len(l.folders) == 0 && len(l.prefixes) == 0 }

// Entries are the list's entries in normal form, folders first.
func (l List) Entries() []string {
	var out []string
	for _, dir := range l.folders {
		out = append(out, folderEntry(dir))
	}
	for _, u := range l.prefixes {
		out = append(out, u.String())
	}
	return out
}

// String is the list for messages.
func (l List) String() string {
	if l.Empty() {
		return "none"
	}
	return strings.Join(l.Entries(), ", ")
}

// Check returns nil if source, a path, file:// URI or http(s) URL, is under one of the
// list's entries, and an error wrapping ErrOutside otherwise. It looks only at the
// text, not at any file system: a connector also resolves a local file's links
// (ResolvedFile) before it opens it.
func (l List) Check(source string) error {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		u, err := url.Parse(source)
		if err != nil {
			return fmt.Errorf("source %q is not a URL: %v", source, err)
		}
		return l.CheckURL(u)
	}
	p, err := localPath(source)
	if err != nil {
		return err
	}
	if !l.inFolder(p, false) {
		return l.outside(source)
	}
	return nil
}

// CheckURL is Check for a parsed http(s) URL: a redirect's target, for one.
func (l List) CheckURL(u *url.URL) error {
	p := cleanURLPath(u.Path)
	for _, r := range l.prefixes {
		if u.Scheme == r.Scheme && host(u) == r.Host && (p+"/" == r.Path || strings.HasPrefix(p, r.Path)) {
			return nil
		}
	}
	return l.outside(u.Redacted())
}

// inFolder reports whether the absolute path p is under one of the list's folders,
// as written or, with resolved, with the folder's own links resolved too (p then
// being a path whose links are resolved).
func (l List) inFolder(p string, resolved bool) bool {
	p = filepath.Clean(p)
	for _, dir := range l.folders {
		if strings.HasPrefix(p, dir) {
			return true
		}
		if !resolved {
			continue
		}
		if real, err := filepath.EvalSymlinks(dir); err == nil && strings.HasPrefix(p, strings.TrimSuffix(real, "/")+"/") {
			return true
		}
	}
	return false
}

func (l List) outside(source string) error {
	return fmt.Errorf("source %q is %w (%s)", source, ErrOutside, l)
}

// ResolvedFile returns the local file a path or file:// source names with every link
// resolved, after checking both the text and the resolved file against the list, so
// that a link inside an allowed folder cannot lead outside it. The caller opens the
// path it returns.
func (l List) ResolvedFile(source string) (string, error) {
	if err := l.Check(source); err != nil {
		return "", err
	}
	p, _ := localPath(source) // Check read it
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		// Inside the list, saying what is missing reveals nothing that is not allowed.
		return "", err
	}
	if !l.inFolder(real, true) {
		return "", l.outside(source)
	}
	return real, nil
}

// localPath is the absolute path a path or file:// source names.
func localPath(source string) (string, error) {
	p := source
	if strings.HasPrefix(source, "file://") {
		var err error
		if p, err = FilePath(source); err != nil {
			return "", fmt.Errorf("source %q: %v", source, err)
		}
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("source %q must be an absolute path", source)
	}
	return p, nil
}

// FilePath is the local path of a file:// URL, which must name no other host.
func FilePath(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("names host %q; only local file URLs are read", u.Host)
	}
	if u.Path == "" {
		return "", errors.New("names no path")
	}
	return u.Path, nil
}

// host is u's host in lower case without its scheme's default port.
func host(u *url.URL) string {
	h := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "http" && strings.HasSuffix(h, ":80"):
		return strings.TrimSuffix(h, ":80")
	case u.Scheme == "https" && strings.HasSuffix(h, ":443"):
		return strings.TrimSuffix(h, ":443")
	}
	return h
}

// cleanURLPath cleans a URL's decoded path, so that "/ams1/../etc" is "/etc": a server
// that decodes "%2e%2e" would read the cleaned path.
func cleanURLPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}
