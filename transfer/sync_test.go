package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// disk pair: a source of n random bytes and an earlier copy of it in dest.
func syncFixture(t *testing.T, n int) (src, dest string, data []byte) {
	t.Helper()
	dir := t.TempDir()
	data = make([]byte, n)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	src, dest = filepath.Join(dir, "src.img"), filepath.Join(dir, "dest.img")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return src, dest, data
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// The running VM wrote to some blocks after the bulk copy: Sync copies those blocks
// and no others.
func TestSyncCopiesOnlyTheChangedBlocks(t *testing.T) {
	const block = 4096
	cases := []struct {
		name    string
		writes  []int64 // offsets the "VM" wrote 100 bytes at
		changed int
	}{
		{"unchanged", nil, 0},
		{"one block", []int64{10}, 1},
		{"two writes in one block", []int64{5000, 6000}, 1},
		{"across a block boundary", []int64{3*block - 50}, 2},
		{"last, short block", []int64{40*block + 10}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dest, data := syncFixture(t, 40*block+1000)
			for _, off := range c.writes {
				for i := range int64(100) {
					data[off+i] ^= 0xff
				}
			}
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := Sync(context.Background(), src, dest, SyncOptions{BlockSize: block})
			if err != nil {
				t.Fatal(err)
			}
			if res.ChangedBlocks != c.changed || res.Blocks != 41 {
				t.Fatalf("changed %d of %d blocks, want %d of 41", res.ChangedBlocks, res.Blocks, c.changed)
			}
			got, _ := os.ReadFile(dest)
			if sha(got) != sha(data) || res.SHA256 != sha(data) {
				t.Fatal("dest does not match the source after the sync")
			}
			if _, err := os.Stat(dest + DeltaSuffix); !os.IsNotExist(err) {
				t.Fatal("the journal is left behind")
			}
		})
	}
}

// A cutover that runs out of time rolls back: dest is exactly the earlier copy.
func TestSyncCancelledLeavesTheCopyAsItWas(t *testing.T) {
	const block = 4096
	src, dest, data := syncFixture(t, 64*block)
	before := sha(data)
	for i := range data {
		data[i] ^= 0x5a // every block changed
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// 64 changed blocks at 64 KiB/s take 4 s: far beyond the 200 ms allowed.
	_, err := Sync(ctx, src, dest, SyncOptions{BlockSize: block, Throttle: NewThrottle(64 << 10)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	got, _ := os.ReadFile(dest)
	if sha(got) != before {
		t.Fatal("a cancelled sync changed dest")
	}
	if _, err := os.Stat(dest + DeltaSuffix); !os.IsNotExist(err) {
		t.Fatal("the journal is left behind")
	}
}

func TestSyncNeedsTheEarlierCopy(t *testing.T) {
	src, dest, _ := syncFixture(t, 1000)
	os.Remove(dest)
	if _, err := Sync(context.Background(), src, dest, SyncOptions{}); err == nil {
		t.Fatal("no error without an earlier copy")
	}
}

// A live source changes during the bulk copy: the copy is taken as it is, and Sync
// then makes it exact.
func TestLiveCopyThenSyncMatchesTheSource(t *testing.T) {
	dir := t.TempDir()
	src, dest, data := syncFixture(t, 256<<10)
	os.Remove(dest)
	dest = filepath.Join(dir, "out", "dest.img")
	changed := make(chan struct{})
	var once bool
	_, err := Copy(context.Background(), src, dest, Options{Live: true, Throttle: NewThrottle(512 << 10),
		Progress: func(off int64) {
			if !once && off > 64<<10 {
				once = true
				// The VM writes near the start, which the copy has already passed.
				f, _ := os.OpenFile(src, os.O_WRONLY, 0)
				f.WriteAt([]byte("written while copying"), 100)
				f.Close()
				close(changed)
			}
		}, ProgressInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	<-changed
	copy(data[100:], "written while copying")
	res, err := Sync(context.Background(), src, dest, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChangedBlocks != 1 || res.SHA256 != sha(data) {
		t.Fatalf("changed %d blocks, sha %s; want 1 block and the source's %s", res.ChangedBlocks, res.SHA256, sha(data))
	}
}

// The cutover also works from an http(s) source.
func TestSyncFromAnHTTPSource(t *testing.T) {
	_, data := disk(t, 300_000, 21)
	dest := filepath.Join(t.TempDir(), "vm.img")
	if err := os.WriteFile(dest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	copy(changed[200_000:], "changed on the VM")
	srv, _ := serve(t, changed)
	res, err := Sync(context.Background(), srv.URL+"/disk.img", dest, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if res.ChangedBlocks != 1 || sha(got) != sha(changed) {
		t.Fatalf("changed %d blocks; the copy matches the source: %v", res.ChangedBlocks, sha(got) == sha(changed))
	}
}

func TestSyncTimesItsSourceReads(t *testing.T) {
	src, dest, _ := syncFixture(t, 300_000)
	var reads int
	if _, err := Sync(context.Background(), src, dest, SyncOptions{OnRead: func(time.Duration) { reads++ }}); err != nil {
		t.Fatal(err)
	}
	if reads == 0 {
		t.Fatal("no read of the source was timed")
	}
}
