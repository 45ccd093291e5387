package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// writeAtomic replaces the config file at path with data, keeping its
// mode (see WriteFileAtomic); path must exist.
func writeAtomic(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if err := WriteFileAtomic(path, data, st.Mode().Perm()); err != nil {
		return writeErr(err)
	}
	return nil
}

// WriteFileAtomic replaces path with data: a temporary file in the same
// directory, given perm, written, fsynced and renamed over path, then the
// directory fsynced so the rename survives a crash. Readers see the old
// file or the new one, never a part; on error the temporary file is
// removed and path is untouched. The directory must exist. Errors are the
// os package's, unwrapped.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func writeErr(err error) error {
	if errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("writing config: %w (%v)", ErrReadOnlyConfig, err)
	}
	return fmt.Errorf("writing config: %w", err)
}

// lockFile takes an exclusive flock on .NAME.lock beside path and returns
// its release. The lock file is never removed: removing it would let two
// editors lock two different files.
func lockFile(path string) (func(), error) {
	dir, base := filepath.Split(path)
	f, err := os.OpenFile(filepath.Join(dir, "."+base+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking config: %w", writeErrCause(err))
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking config: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

func writeErrCause(err error) error {
	if errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w (%v)", ErrReadOnlyConfig, err)
	}
	return err
}
