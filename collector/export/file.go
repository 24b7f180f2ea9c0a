package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// file appends each event as one JSON line, synced to disk, and rotates
// the file by size: path.1 is the newest old file, path.N the oldest.
type file struct {
	cfg  *SinkConfig
	f    *os.File
	size int64
}

func newFile(c *SinkConfig) (*file, error) {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o750); err != nil {
		return nil, fmt.Errorf("sink %s: creating the folder of %s: %w", c.Name, c.Path, err)
	}
	return &file{cfg: c}, nil
}

func (w *file) open() error {
	f, err := os.OpenFile(w.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening %s: %w", w.cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening %s: %w", w.cfg.Path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

func (w *file) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", w.cfg.Path, err)
	}
	w.f = nil
	p := w.cfg.Path
	os.Remove(fmt.Sprintf("%s.%d", p, w.cfg.MaxFiles))
	for i := w.cfg.MaxFiles - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", p, i), fmt.Sprintf("%s.%d", p, i+1))
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotating %s: %w", p, err)
		}
	}
	if err := os.Rename(p, p+".1"); err != nil {
		return fmt.Errorf("rotating %s: %w", p, err)
	}
	return w.open()
}

func (w *file) Send(ctx context.Context, ev *Event) error {
	b, err := body(w.cfg.Format, ev)
	if err != nil {
		return &PermanentError{err}
	}
	b = append(b, '\n')
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.size > 0 && w.size+int64(len(b)) > w.cfg.MaxBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.f.Close()
		w.f = nil
		return fmt.Errorf("writing %s: %w", w.cfg.Path, err)
	}
	return nil
}

func (w *file) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
