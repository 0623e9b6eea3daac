package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/pmo-dev/pmo/planning"
)

// DiskStats says what WriteDisks found and did.
type DiskStats struct {
	// Files is the number of disk images, Bytes their total size.
	Files int
	Bytes int64
	// Written is how many images were written; the others were already there.
	Written int
}

// WriteDisks makes sure that each VM's disk image exists at the absolute path in its
// DiskURI with exactly DiskBytes bytes, because the transfer activity refuses a source
// whose size differs from the inventory's. A file of the right size is left as it is,
// so a second run costs a stat per VM. The content is pseudo-random (ChaCha8 keyed by
// seed and VM ID): the same for the same seed, and not compressible, so a copy moves
// every byte. Each image is written to a temporary file in the same folder and renamed
// into place, so no reader ever sees half an image.
func WriteDisks(ctx context.Context, vms []planning.InventoryVM, seed uint64) (DiskStats, error) {
	var st DiskStats
	buf := make([]byte, 256<<10)
	for _, vm := range vms {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		path := vm.DiskURI
		if !filepath.IsAbs(path) {
			return st, fmt.Errorf("demo: disk of %s: %q is not an absolute path", vm.ID, path)
		}
		if vm.DiskBytes <= 0 {
			return st, fmt.Errorf("demo: disk of %s: size %d is not positive", vm.ID, vm.DiskBytes)
		}
		st.Files++
		st.Bytes += vm.DiskBytes
		fi, err := os.Stat(path)
		if err == nil && fi.Mode().IsRegular() && fi.Size() == vm.DiskBytes {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("demo: disk of %s: %w", vm.ID, err)
		}
		if err := writeDisk(path, vm.DiskBytes, diskKey(seed, vm.ID), buf); err != nil {
			return st, fmt.Errorf("demo: disk of %s: %w", vm.ID, err)
		}
		st.Written++
	}
	return st, nil
}

// diskKey derives a VM's ChaCha8 key from the seed and the VM's ID.
func diskKey(seed uint64, vmID string) [32]byte {
	h := sha256.New()
	h.Write([]byte("pmo demo disk\x00"))
	h.Write(binary.LittleEndian.AppendUint64(nil, seed))
	h.Write([]byte(vmID))
	return [32]byte(h.Sum(nil))
}

// writeDisk writes size bytes of the key's stream to a temporary file and renames it
// to path. buf is scratch space.
func writeDisk(path string, size int64, key [32]byte, buf []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	rng := rand.NewChaCha8(key)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = rng.Read(buf[:n]) // never fails
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	// Sync before the rename, so that after a crash the name holds the whole image
	// or nothing.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
